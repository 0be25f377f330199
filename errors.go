package xdpconnect

import (
	"errors"
	"fmt"
	"regexp"
)

// OptionError says that an option or the plan cannot work; nothing was
// sent. Field names the Options or Plan field at fault as Go spells it
// ("Rate", "Sources"), Value is what was given, and Reason says why and
// what would work, naming other fields in braces ("{Close}"), which Error
// prints as Go names and a command can print as its own words (Words).
type OptionError struct {
	Field  string
	Value  string
	Reason string
	// Err is a sentinel the error matches with errors.Is (ErrUnbounded,
	// ErrNotSupported), or nil.
	Err error
}

var fieldRef = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// Error is "Field Value: Reason" (the Reason alone when no one field is at
// fault), fields named as Go spells them.
func (e *OptionError) Error() string { return e.Words(func(f string) string { return f }) }

// Words is the message with every field named by name (the command's flag
// names, say): "NAME(Field) Value: Reason".
func (e *OptionError) Words(name func(field string) string) string {
	reason := fieldRef.ReplaceAllStringFunc(e.Reason, func(m string) string { return name(m[1 : len(m)-1]) })
	if e.Field == "" {
		return reason
	}
	head := name(e.Field)
	if e.Value != "" {
		head += " " + e.Value
	}
	return head + ": " + reason
}

// Unwrap is the sentinel, if any.
func (e *OptionError) Unwrap() error { return e.Err }

// Sentinels an *OptionError may match (errors.Is).
var (
	// ErrUnbounded: a plan with neither Count nor Duration. Every run is
	// bounded.
	ErrUnbounded = errors.New("unbounded plan")
	// ErrNotSupported: the kernel or the interface lacks what an option
	// needs (it also matches github.com/cilium/ebpf's ErrNotSupported when
	// the kernel's probe said so).
	ErrNotSupported = errors.New("not supported here")
)

// ErrSessionUsed is the answer to a Run after the session has run a plan
// or served Dial, and to a Dial after its Run has ended: a session's
// sockets serve one engine, so a new load needs a new session (Close this
// one, Open another). Dial during a Run shares the running engine.
var ErrSessionUsed = errors.New("xdpconnect: the session has run its plan or serves Dial: Close it and Open another")

// optionErr is an *OptionError of field, given value (nil: none shown),
// with the reason f.
func optionErr(field string, value any, f string, a ...any) error {
	v := ""
	if value != nil {
		v = fmt.Sprint(value)
	}
	return &OptionError{Field: field, Value: v, Reason: fmt.Sprintf(f, a...)}
}
