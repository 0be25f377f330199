package xdpconnect

import (
	"errors"

	"github.com/xdpconnect/xdpconnect/fastpath"
)

// checkRequest is Check's part for request mode: the engine's own check,
// in the library's words.
func (p *Plan) checkRequest() error {
	err := fastpath.CheckRequest(p.Request, p.Close, p.RequestsPerConn, p.ResponseTimeout)
	if ce, ok := errors.AsType[*fastpath.ConfigError](err); ok {
		return optionErr(ce.Field, nil, "%s", ce.Reason)
	}
	return err
}
