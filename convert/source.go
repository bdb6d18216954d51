package convert

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// source is one input document being converted: every field read is marked, and what is
// left unread when the conversion ends becomes a note, so nothing is dropped silently.
type source struct {
	obj   map[string]any
	used  map[string]bool
	notes []string
}

func newSource(obj map[string]any) *source {
	return &source{obj: obj, used: map[string]bool{}}
}

// pathString writes keys as a field path: spec.steps[2].pause.
func pathString(keys []any) string {
	var b strings.Builder
	for _, k := range keys {
		switch k := k.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, k)
		}
	}
	return b.String()
}

// lookup returns the value at keys (strings for fields, ints for list items) without
// marking it.
func (s *source) lookup(keys ...any) (any, bool) {
	var cur any = s.obj
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			l, ok := cur.([]any)
			if !ok || k < 0 || k >= len(l) {
				return nil, false
			}
			cur = l[k]
		}
	}
	return cur, true
}

// get returns the value at keys and marks it, with all it holds, as carried over.
func (s *source) get(keys ...any) (any, bool) {
	v, ok := s.lookup(keys...)
	if ok {
		s.used[pathString(keys)] = true
	}
	return v, ok
}

// has reports whether keys holds a value, without marking it.
func (s *source) has(keys ...any) bool {
	_, ok := s.lookup(keys...)
	return ok
}

// str returns the string at keys ("" when absent); a number or a bool is written as text.
func (s *source) str(keys ...any) string {
	v, ok := s.get(keys...)
	if !ok || v == nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// num returns the integer at keys; ok is false when absent or not an integer.
func (s *source) num(keys ...any) (int64, bool) {
	v, ok := s.get(keys...)
	if !ok {
		return 0, false
	}
	switch v := v.(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// boolean returns the bool at keys, def when absent.
func (s *source) boolean(def bool, keys ...any) bool {
	v, ok := s.get(keys...)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		return def
	}
	return b
}

// list returns the length of the list at keys, 0 when absent; the list itself is not
// marked, its items are as they are read.
func (s *source) list(keys ...any) int {
	v, ok := s.lookup(keys...)
	if !ok {
		return 0
	}
	l, _ := v.([]any)
	return len(l)
}

// keysAt returns the sorted field names of the object at keys.
func (s *source) keysAt(keys ...any) []string {
	v, _ := s.lookup(keys...)
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// note records that what keys holds is not carried over, and why; nothing when absent or
// already carried over.
func (s *source) note(reason string, keys ...any) {
	if s.used[pathString(keys)] {
		return
	}
	v, ok := s.get(keys...)
	if !ok {
		return
	}
	s.notes = append(s.notes, fmt.Sprintf("%s: %s: %s", pathString(keys), shown(v), reason))
}

// say records a note about the conversion as a whole.
func (s *source) say(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// shown is v in one short line of JSON.
func shown(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const max = 80
	if len(b) > max {
		return string(b[:max-3]) + "..."
	}
	return string(b)
}

// leftovers notes every field no conversion read, as the highest unread node.
func (s *source) leftovers(reason string) {
	var walk func(keys []any, v any)
	walk = func(keys []any, v any) {
		p := pathString(keys)
		if s.used[p] {
			return
		}
		if !s.usedUnder(p) {
			if len(keys) > 0 {
				s.notes = append(s.notes, fmt.Sprintf("%s: %s: %s", p, shown(v), reason))
			}
			return
		}
		switch v := v.(type) {
		case map[string]any:
			names := make([]string, 0, len(v))
			for k := range v {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				walk(append(slices.Clip(keys), k), v[k])
			}
		case []any:
			for i, item := range v {
				walk(append(slices.Clip(keys), i), item)
			}
		}
	}
	walk(nil, s.obj)
}

// usedUnder reports whether a field below p was read.
func (s *source) usedUnder(p string) bool {
	if p == "" {
		return len(s.used) > 0
	}
	for u := range s.used {
		if strings.HasPrefix(u, p+".") || strings.HasPrefix(u, p+"[") {
			return true
		}
	}
	return false
}
