package report

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// rulesOf lists what is wrong with the merge rules of struct type t and
// the types it nests: a field without a rule, an unknown rule, an omit
// without its reason, a rule that does not fit the field's type, a keyed
// list whose elements have no key.
func rulesOf(t reflect.Type, at string) []string {
	var bad []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := at + f.Name
		kind, reason := rule(f)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch kind {
		case "":
			bad = append(bad, name+": no merge rule: tag it (sum, max, same, each, keyed, zip, concat, join, derived, set, omit=REASON)")
		case "sum":
			switch ft.Kind() {
			case reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Int, reflect.Int64, reflect.Float64:
			case reflect.Map:
				if ft.Elem().Kind() != reflect.Uint64 {
					bad = append(bad, name+": sum of a map of "+ft.Elem().String())
				}
			default:
				bad = append(bad, name+": sum of a "+ft.String())
			}
		case "max":
			switch ft.Kind() {
			case reflect.Uint64, reflect.Int, reflect.Int64, reflect.Float64:
			default:
				bad = append(bad, name+": max of a "+ft.String())
			}
		case "each":
			if ft.Kind() != reflect.Struct {
				bad = append(bad, name+": each on a "+ft.String())
			} else {
				bad = append(bad, rulesOf(ft, name+".")...)
			}
		case "keyed", "zip":
			if ft.Kind() != reflect.Slice || ft.Elem().Kind() != reflect.Struct {
				bad = append(bad, name+": "+kind+" on a "+ft.String())
				continue
			}
			keys := 0
			for j := range ft.Elem().NumField() {
				if k, _ := rule(ft.Elem().Field(j)); k == "key" {
					keys++
				}
			}
			if kind == "keyed" && keys != 1 {
				bad = append(bad, fmt.Sprintf("%s: keyed, but %s has %d fields tagged key", name, ft.Elem(), keys))
			}
			bad = append(bad, rulesOf(ft.Elem(), name+"[].")...)
		case "concat":
			if ft.Kind() != reflect.Slice {
				bad = append(bad, name+": concat on a "+ft.String())
			}
		case "join":
			if ft.Kind() != reflect.String {
				bad = append(bad, name+": join on a "+ft.String())
			}
		case "omit":
			if strings.TrimSpace(reason) == "" {
				bad = append(bad, name+": omitted without a reason (omit=WHY)")
			}
		case "same", "key", "derived", "set":
		default:
			bad = append(bad, name+": unknown merge rule "+kind)
		}
	}
	return bad
}

// Every field of the report, nested parts included, has a merge rule
// that fits it: a field added without one fails here, before a merged
// report can lose it.
func TestMergeRulesComplete(t *testing.T) {
	if bad := rulesOf(reflect.TypeFor[Report](), ""); len(bad) > 0 {
		t.Fatalf("report fields without a usable merge rule:\n%s", strings.Join(bad, "\n"))
	}
	// The walk bites: a new field without a rule, an omit without a
	// reason, a sum of text.
	type grown struct {
		Old     uint64 `json:"old" merge:"sum"`
		New     uint64 `json:"new"`
		Skipped string `json:"skipped" merge:"omit"`
		Text    string `json:"text" merge:"sum"`
	}
	if bad := rulesOf(reflect.TypeFor[grown](), ""); len(bad) != 3 {
		t.Fatalf("the walk found %d problems in a report with three: %v", len(bad), bad)
	}
}

// fill gives every field of v a value: the same in every report for rules
// that must agree (and keys), a value of its own (from salt) for the rest;
// lists get one element, maps one key, pointers a value.
func fill(v reflect.Value, salt uint64, kind string) {
	same := kind == "same" || kind == "key"
	n := salt
	if same {
		n = 7
	}
	switch v.Kind() {
	case reflect.Uint64, reflect.Uint32, reflect.Uint16:
		v.SetUint(n)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Float64:
		v.SetFloat(float64(n) / 4)
	case reflect.String:
		if same {
			v.SetString("k")
		} else {
			v.SetString(fmt.Sprint("s", salt))
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8:
		v.SetUint(n)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		x := reflect.New(v.Type().Elem()).Elem()
		fill(x, salt, kind)
		v.SetMapIndex(reflect.ValueOf("k"), x)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), salt, kind)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), salt, kind)
	case reflect.Struct:
		for i := range v.NumField() {
			k, _ := rule(v.Type().Field(i))
			if k == "" {
				k = kind // a struct compared whole (same): all its fields agree
			}
			fill(v.Field(i), salt, k)
		}
	}
}

// check compares merged out with the parts a and b by each field's rule.
func check(t *testing.T, out, a, b reflect.Value, at string) {
	t.Helper()
	for i := range out.NumField() {
		f := out.Type().Field(i)
		kind, _ := rule(f)
		o, x, y := out.Field(i), a.Field(i), b.Field(i)
		name := at + f.Name
		switch kind {
		case "sum":
			if o.Kind() == reflect.Map {
				if got, want := o.MapIndex(reflect.ValueOf("k")), x.MapIndex(reflect.ValueOf("k")).Uint()+y.MapIndex(reflect.ValueOf("k")).Uint(); !got.IsValid() || got.Uint() != want {
					t.Errorf("%s: %v, want the sum %d", name, o, want)
				}
				continue
			}
			want := reflect.New(o.Type()).Elem()
			want.Set(x)
			if err := add(want, y, name); err != nil || !o.Equal(want) {
				t.Errorf("%s: %v, want the sum %v (%v)", name, o, want, err)
			}
		case "max":
			want := x
			if greater(y, x) {
				want = y
			}
			if !o.Equal(want) {
				t.Errorf("%s: %v, want the larger %v", name, o, want)
			}
		case "same":
			if !reflect.DeepEqual(o.Interface(), x.Interface()) {
				t.Errorf("%s: %v, want the shards' %v", name, show(o), show(x))
			}
		case "each":
			if o.Kind() == reflect.Pointer {
				if o.IsNil() {
					t.Errorf("%s: dropped", name)
					continue
				}
				o, x, y = o.Elem(), x.Elem(), y.Elem()
			}
			check(t, o, x, y, name+".")
		case "keyed", "zip":
			if o.Len() != 1 {
				t.Errorf("%s: %d elements, want the shards' one, merged", name, o.Len())
				continue
			}
			check(t, o.Index(0), x.Index(0), y.Index(0), name+"[0].")
		case "concat":
			if o.Len() != x.Len()+y.Len() {
				t.Errorf("%s: %d elements, want %d", name, o.Len(), x.Len()+y.Len())
			}
		case "join":
			if !strings.Contains(o.String(), x.String()) || !strings.Contains(o.String(), y.String()) {
				t.Errorf("%s: %q lacks %q or %q", name, o.String(), x.String(), y.String())
			}
		}
	}
}

// Each rule does what its tag says, for every field: two reports with a
// value in every field merge into the sums, maxima and agreed values their
// tags promise (a field whose rule the merge forgot stays zero here).
func TestMergeEveryField(t *testing.T) {
	var a, b, out Report
	fill(reflect.ValueOf(&a).Elem(), 3, "")
	fill(reflect.ValueOf(&b).Elem(), 5, "")
	for i, r := range []*Report{&a, &b} {
		if err := mergeStruct(reflect.ValueOf(&out).Elem(), reflect.ValueOf(r).Elem(), i == 0, fmt.Sprintf("%d/2", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	check(t, reflect.ValueOf(out), reflect.ValueOf(a), reflect.ValueOf(b), "")
}
