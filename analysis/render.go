package analysis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/metricsq"
)

// renderer replaces {{args.name}} in every string of a metric but its name, as Argo
// Rollouts does: count, limits, durations, conditions and every provider field can come
// from args. Values are inserted as they are and not expanded again.
type renderer struct {
	args map[string]string
	// standIns are the args a template leaves to its runs: their values are stand-ins,
	// and a field that is nothing but one of them gets a stand-in of its kind instead,
	// so that `url: '{{args.url}}'` checks as a URL and `count: '{{args.n}}'` as a count.
	standIns map[string]bool
}

// Stand-ins by the kind of field a lone arg fills.
const (
	standInURL      = "http://placeholder.invalid"
	standInDuration = "1m"
	standInInteger  = "0"
)

// fieldKinds gives the stand-in for the fields whose value must parse as one kind.
var fieldKinds = map[string]string{
	"url": standInURL, "address": standInURL, "tokenUrl": standInURL,
	"interval": standInDuration, "initialDelay": standInDuration, "timeout": standInDuration,
	"window": standInDuration, "step": standInDuration, "lookback": standInDuration,
	"count": standInInteger, "failureLimit": standInInteger, "inconclusiveLimit": standInInteger,
	"consecutiveErrorLimit": standInInteger, "consecutiveSuccessLimit": standInInteger,
}

// leadingArg matches text that starts with an arg, such as `{{args.base}}/api/health`.
var leadingArg = regexp.MustCompile(`^\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}`)

// rendering says, by field path, what rendering did to a metric's fields.
type rendering struct {
	// failed are the fields an arg was missing from, left as written.
	failed []string
	// standIns are, for the fields that got stand-ins for args the runs give, which they
	// got: "lookback=0".
	standIns map[string][]string
}

// render returns m with its args rendered. Each missing arg is a problem at the field
// that uses it, caused by a *metricsq.UndefinedArgError; such fields are left as written.
func (r renderer) render(path *field.Path, m v1alpha1.Metric, errs *fielderr.List) (v1alpha1.Metric, rendering) {
	whole := rendering{failed: []string{path.String()}}
	raw, err := json.Marshal(m)
	if err != nil {
		// Only a raw JSON field (jsonBody, an unsupported provider) that is not JSON, or a
		// number that is NaN or infinite, can fail to encode: neither comes from YAML or
		// the API server. The metric is checked as written, so that the field that holds
		// the value is named by its own check too.
		errs.Invalid(path, field.OmitValueType{}, fmt.Errorf("args cannot be rendered into a metric that cannot be encoded: %w", err))
		return m, rendering{}
	}
	w := walk{r: r, errs: errs, did: rendering{standIns: map[string][]string{}}}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := w.value(dec, path, "", true); err != nil {
		errs.Invalid(path, field.OmitValueType{}, fmt.Errorf("rendering args: %w", err))
		return m, whole
	}
	var out v1alpha1.Metric
	if err := json.Unmarshal(w.out.Bytes(), &out); err != nil {
		errs.Invalid(path, field.OmitValueType{}, fmt.Errorf("rendering args: %w", err))
		return m, whole
	}
	return out, w.did
}

// explain says, in the problems of found about fields an arg could not be rendered into,
// only that, and in those about fields that got stand-ins, which stand-ins they got.
func (did rendering) explain(found fielderr.List) fielderr.List {
	within := func(p *fielderr.Error, f string) bool {
		return p.Field.Field == f || strings.HasPrefix(p.Field.Field, f+".") || strings.HasPrefix(p.Field.Field, f+"[")
	}
	found = slices.DeleteFunc(found, func(p *fielderr.Error) bool {
		if _, undefined := errors.AsType[*metricsq.UndefinedArgError](p.Cause); undefined {
			return false
		}
		return slices.ContainsFunc(did.failed, func(f string) bool { return within(p, f) })
	})
	for _, p := range found {
		if used := did.standIns[p.Field.Field]; len(used) > 0 {
			// On the first line, which is the one a line-per-problem listing shows.
			first, rest, more := strings.Cut(p.Field.Detail, "\n")
			p.Field.Detail = first + " (checked with stand-ins for the args runs give: " + strings.Join(used, ", ") + ")"
			if more {
				p.Field.Detail += "\n" + rest
			}
		}
	}
	return found
}

// walk copies a JSON document token by token, rendering its strings, so that each
// string is rendered knowing its field path.
type walk struct {
	r    renderer
	errs *fielderr.List
	out  bytes.Buffer
	did  rendering
}

// value copies one value; key is its field's name ("" in a list), top whether it is the
// metric itself, whose name is not rendered.
func (w *walk) value(dec *json.Decoder, path *field.Path, key string, top bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			w.out.WriteByte('{')
			for i := 0; dec.More(); i++ {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if i > 0 {
					w.out.WriteByte(',')
				}
				w.str(k)
				w.out.WriteByte(':')
				if top && k == "name" {
					if err := w.copyValue(dec); err != nil {
						return err
					}
					continue
				}
				if err := w.value(dec, path.Child(k), k, false); err != nil {
					return err
				}
			}
			w.out.WriteByte('}')
		case '[':
			w.out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					w.out.WriteByte(',')
				}
				if err := w.item(dec, path, key, i); err != nil {
					return err
				}
			}
			w.out.WriteByte(']')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		w.str(w.renderString(path, key, t))
	case json.Number:
		w.out.WriteString(t.String())
	case bool:
		fmt.Fprint(&w.out, t)
	case nil:
		w.out.WriteString("null")
	}
	return nil
}

// namedLists are the lists in a metric whose items are keyed by name (+listType=map), so
// that their field paths name the item as the provider's own checks do:
// judge.metrics[latency].
var namedLists = map[string]bool{"metrics": true}

// item copies the i-th item of the list key at path.
func (w *walk) item(dec *json.Decoder, path *field.Path, key string, i int) error {
	if !namedLists[key] {
		return w.value(dec, path.Index(i), "", false)
	}
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	var named struct {
		Name string `json:"name"`
	}
	itemPath := path.Index(i)
	if json.Unmarshal(raw, &named) == nil && named.Name != "" {
		itemPath = path.Key(named.Name)
	}
	inner := json.NewDecoder(bytes.NewReader(raw))
	inner.UseNumber()
	return w.value(inner, itemPath, "", false)
}

// copyValue copies one value as it is.
func (w *walk) copyValue(dec *json.Decoder) error {
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return err
	}
	w.out.Write(v)
	return nil
}

func (w *walk) str(s string) {
	b, _ := json.Marshal(s) // a string always encodes
	w.out.Write(b)
}

// renderString renders text, the value of the field key at path.
func (w *walk) renderString(path *field.Path, key, text string) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	args := w.r.args
	if standIn, ok := fieldKinds[key]; ok && len(w.r.standIns) > 0 {
		if m := leadingArg.FindStringSubmatch(text); m != nil && w.r.standIns[m[1]] && (standIn == standInURL || m[0] == text) {
			args = maps.Clone(w.r.args)
			args[m[1]] = standIn
		}
	}
	out, err := metricsq.Render(text, args)
	if err == nil {
		for _, name := range metricsq.ArgNames(text) {
			if w.r.standIns[name] {
				w.did.standIns[path.String()] = append(w.did.standIns[path.String()], name+"="+args[name])
			}
		}
		return out
	}
	causes := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		causes = joined.Unwrap()
	}
	for _, c := range causes {
		w.errs.Invalid(path, text, c)
	}
	w.did.failed = append(w.did.failed, path.String())
	return text
}
