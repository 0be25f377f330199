package report

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// FormatVersion is the format of the reports this package writes. A report
// of another format is refused by Merge: its fields may mean other things.
const FormatVersion = 2

// MaxShards bounds the shard count a report may claim, so that nothing is
// sized by a number read from a file.
const MaxShards = 4096

// Merge combines the reports of a run's shards into one. Every field's rule
// is the `merge` tag beside it, so a field cannot be added without one
// (TestMergeRulesComplete walks them all):
//
//   - sum: counts, rates (the shards ran at once) and counts by name add up;
//   - max: durations, peaks and a histogram's largest value;
//   - same: every shard must agree (run ID, format, close mode, TCP settings);
//   - each: a nested part, merged by its own fields' rules;
//   - keyed: a list merged element by element by the field tagged key
//     (targets, families, histogram buckets);
//   - zip: a list merged by position (the 100 ms series, which the shards
//     sample from a shared start);
//   - concat, join: findings listed, stop reasons joined with the shard named;
//   - derived: computed again from the merged parts (latency quantiles from
//     the merged histograms, never averaged quantiles);
//   - set: written by Merge (the shard info of the merged report);
//   - omit=REASON: deliberately not merged, for that reason.
//
// It refuses reports of different runs, the same shard twice, shards that
// disagree where they must agree, and names the shards that are missing.
// Reports are checked first (Check).
func Merge(rs []*Report) (*Report, error) {
	if len(rs) == 0 {
		return nil, errors.New("merge: no report")
	}
	for i, r := range rs {
		if err := r.Check(); err != nil {
			return nil, fmt.Errorf("merge: report %d: %w", i+1, err)
		}
		if r.Shard == nil || r.RunID == "" {
			return nil, fmt.Errorf("merge: report %d has no run ID and shard (run with --shard i/N)", i+1)
		}
	}
	first := rs[0]
	n := first.Shard.Count
	seen := make([]bool, n) // n <= MaxShards (Check)
	out := &Report{}
	for i, r := range rs {
		switch {
		case r.RunID != first.RunID:
			return nil, fmt.Errorf("merge: report %d is of run %s, the first of run %s", i+1, r.RunID, first.RunID)
		case r.Shard.Count != n:
			return nil, fmt.Errorf("merge: report %d is a shard of %d, the first of %d", i+1, r.Shard.Count, n)
		case seen[r.Shard.Index]:
			return nil, fmt.Errorf("merge: shard %s is given twice", r.Shard)
		}
		seen[r.Shard.Index] = true
		if err := mergeStruct(reflect.ValueOf(out).Elem(), reflect.ValueOf(r).Elem(), i == 0, r.Shard.String(), ""); err != nil {
			return nil, fmt.Errorf("merge: shard %s: %w", r.Shard, err)
		}
	}
	var missing []string
	for i, ok := range seen {
		if !ok {
			missing = append(missing, (&ShardInfo{Index: i, Count: n}).String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("merge: shard(s) %s of run %s missing", strings.Join(missing, ", "), first.RunID)
	}
	out.Shard = &ShardInfo{Index: -1, Count: n, PlanCount: first.Shard.PlanCount}
	out.derive()
	return out, nil
}

// derive computes the derived fields from the merged histograms.
func (r *Report) derive() {
	h := r.Histogram()
	r.SetRTT(&h)
	for i := range r.Targets {
		t := &r.Targets[i]
		th := t.Histogram()
		t.SetRTT(&th)
	}
	if q := r.Requests; q != nil {
		requantile(&q.TTFB, q.TTFBHist)
		requantile(&q.TTLB, q.TTLBHist)
		requantile(&q.TTLBSched, q.TTLBSchedHist)
	}
	if t := r.TLS; t != nil {
		requantile(&t.HandshakeTime, t.HandshakeHist)
	}
	for i := range r.Timeline {
		s := &r.Timeline[i]
		requantile(&s.RTT, s.RTTHist)
		requantile(&s.TTFB, s.TTFBHist)
		requantile(&s.TTLB, s.TTLBHist)
	}
	if r.Saturation != nil {
		r.Saturation.Judge(r)
	}
}

// requantile sets q from the merged histogram's buckets (its Max, merged
// as the largest, bounds it).
func requantile(q *Quantiles, buckets []Bucket) {
	h := HistogramOf(buckets, q.Max)
	*q = QuantilesOf(&h)
}

// rule is a field's merge tag: its kind and, for omit, the reason.
func rule(f reflect.StructField) (kind, reason string) {
	kind, reason, _ = strings.Cut(f.Tag.Get("merge"), "=")
	return kind, reason
}

// mergeStruct merges src into dst, two structs of one type, field by
// field; first says src is the first report (dst is still empty); shard
// names src in joined text; at is the field path for errors.
func mergeStruct(dst, src reflect.Value, first bool, shard, at string) error {
	t := dst.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		d, s := dst.Field(i), src.Field(i)
		name := at + jsonName(f)
		kind, _ := rule(f)
		switch kind {
		case "sum":
			if err := add(d, s, name); err != nil {
				return err
			}
		case "max":
			if greater(s, d) {
				d.Set(s)
			}
		case "same":
			if first {
				d.Set(s)
			} else if !reflect.DeepEqual(d.Interface(), s.Interface()) {
				return fmt.Errorf("%s differs between shards (%v, %v): merge only the shards of one run, started with the same settings", name, show(d), show(s))
			}
		case "each":
			if err := mergeEach(d, s, first, shard, name); err != nil {
				return err
			}
		case "keyed":
			if err := mergeKeyed(d, s, first, shard, name); err != nil {
				return err
			}
		case "zip":
			for j := range s.Len() {
				if j == d.Len() {
					d.Set(reflect.Append(d, reflect.Zero(s.Type().Elem())))
				}
				if err := mergeStruct(d.Index(j), s.Index(j), false, shard, name+"."); err != nil {
					return err
				}
			}
		case "concat":
			d.Set(reflect.AppendSlice(d, s))
		case "join":
			if s.String() != "" {
				d.SetString(strings.TrimPrefix(d.String()+"; ", "; ") + "shard " + shard + ": " + s.String())
			}
		case "key", "derived", "set", "omit":
		default:
			return fmt.Errorf("%s: no merge rule (tag %q)", name, f.Tag.Get("merge"))
		}
	}
	return nil
}

// mergeEach merges a nested struct, or a pointer to one (nil in src: nothing
// to add).
func mergeEach(d, s reflect.Value, first bool, shard, name string) error {
	if s.Kind() == reflect.Pointer {
		if s.IsNil() {
			return nil
		}
		if d.IsNil() {
			d.Set(reflect.New(s.Type().Elem()))
			first = true
		}
		d, s = d.Elem(), s.Elem()
	}
	return mergeStruct(d, s, first, shard, name+".")
}

// mergeKeyed merges a list of structs element by element, matching them
// by the field tagged key; lists keyed by a number are kept sorted.
func mergeKeyed(d, s reflect.Value, first bool, shard, name string) error {
	et := s.Type().Elem()
	k := -1
	for i := range et.NumField() {
		if kind, _ := rule(et.Field(i)); kind == "key" {
			k = i
		}
	}
	if k < 0 {
		return fmt.Errorf("%s: keyed, but %s has no field tagged key", name, et)
	}
	for j := range s.Len() {
		key := s.Index(j).Field(k).Interface()
		at := -1
		for i := range d.Len() {
			if d.Index(i).Field(k).Interface() == key {
				at = i
				break
			}
		}
		if at < 0 {
			d.Set(reflect.Append(d, reflect.Zero(et)))
			at = d.Len() - 1
			d.Index(at).Field(k).Set(s.Index(j).Field(k))
		}
		if err := mergeStruct(d.Index(at), s.Index(j), false, shard, fmt.Sprintf("%s[%v].", name, key)); err != nil {
			return err
		}
	}
	// Lists keyed by a number (histogram bounds, the timeline's seconds)
	// stay in order whatever each shard brought; names keep the order
	// they came in (the plan's).
	switch et.Field(k).Type.Kind() {
	case reflect.Float64:
		sort.SliceStable(d.Interface(), func(a, b int) bool { return d.Index(a).Field(k).Float() < d.Index(b).Field(k).Float() })
	case reflect.Int, reflect.Int64:
		sort.SliceStable(d.Interface(), func(a, b int) bool { return d.Index(a).Field(k).Int() < d.Index(b).Field(k).Int() })
	}
	return nil
}

// add adds src to dst: numbers, or counts by name.
func add(d, s reflect.Value, name string) error {
	switch d.Kind() {
	case reflect.Uint64, reflect.Uint32, reflect.Uint16:
		d.SetUint(d.Uint() + s.Uint())
	case reflect.Int, reflect.Int64:
		d.SetInt(d.Int() + s.Int())
	case reflect.Float64:
		d.SetFloat(d.Float() + s.Float())
	case reflect.Map:
		if s.Len() > 0 && d.IsNil() {
			d.Set(reflect.MakeMap(d.Type()))
		}
		for it := s.MapRange(); it.Next(); {
			v := reflect.New(d.Type().Elem()).Elem()
			if old := d.MapIndex(it.Key()); old.IsValid() {
				v.Set(old)
			}
			if err := add(v, it.Value(), name); err != nil {
				return err
			}
			d.SetMapIndex(it.Key(), v)
		}
	default:
		return fmt.Errorf("%s: cannot sum a %s", name, d.Type())
	}
	return nil
}

// greater says a > b for two numbers of one kind.
func greater(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Float64:
		return a.Float() > b.Float()
	case reflect.Int, reflect.Int64:
		return a.Int() > b.Int()
	default:
		return a.Uint() > b.Uint()
	}
}

// show is a value for an error message: the pointed-to value of a pointer.
func show(v reflect.Value) any {
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		return v.Elem().Interface()
	}
	return v.Interface()
}

// jsonName is a field's name in the JSON report.
func jsonName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return cmp.Or(n, f.Name)
}
