// Package convert turns Argo Rollouts and Flagger objects into promgate's: Argo's
// AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun into the same kinds; an Argo
// Rollout into a promgate Rollout beside a Deployment (the Rollout's pod template, when it
// carried one); a Flagger Canary, with the MetricTemplates it uses, into a Rollout and
// AnalysisTemplates, its built-in request-success-rate and request-duration written out
// as the PromQL of the provider it names. Every field of the input is either carried over
// or named in a note saying why it was not, printed as a comment before the object: a
// conversion never drops anything silently. Objects of other kinds pass through as they
// are.
package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Flagger providers convert knows the built-in metrics of.
var providers = []string{"istio", "linkerd", "nginx", "contour", "gatewayapi", "kubernetes"}

// Options configure a conversion.
type Options struct {
	// Provider is the Flagger provider of Canaries that name none (Flagger's own
	// -mesh-provider flag): one of istio, linkerd, nginx, contour, gatewayapi, kubernetes.
	Provider string
}

// Object is one object convert prints.
type Object struct {
	// From names the input object: "argoproj.io/v1alpha1 Rollout shop/checkout".
	From string
	// Notes say, one per line, what of the input was not carried over and why.
	Notes []string
	// Object is the converted object as JSON decodes it; nil when the input was refused
	// whole (its notes say why).
	Object map[string]any
}

// InputError is a document that cannot be read at all: not YAML, or not an object.
type InputError struct {
	// Doc is the 1-based document of the input.
	Doc int
	Err error
}

func (e *InputError) Error() string { return fmt.Sprintf("document %d: %v", e.Doc, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

// Convert converts every document of in, multi-document YAML or JSON, and returns the
// objects to print, in input order: a Rollout's Deployment before it, a Canary's
// AnalysisTemplates before its Rollout.
func Convert(in io.Reader, opts Options) ([]Object, error) {
	if opts.Provider != "" && !slices.Contains(providers, opts.Provider) {
		return nil, fmt.Errorf("provider %q is not one of %s", opts.Provider, strings.Join(providers, ", "))
	}
	var docs []map[string]any
	dec := utilyaml.NewYAMLOrJSONDecoder(in, 4096)
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, &InputError{Doc: n, Err: err}
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			n--
			continue
		}
		var obj map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			return nil, &InputError{Doc: n, Err: fmt.Errorf("not an object: %w", err)}
		}
		docs = append(docs, obj)
	}
	c := &converter{opts: opts, metricTemplates: map[string]map[string]any{}, usedMetricTemplates: map[string]bool{}}
	for _, d := range docs {
		if group(d) == "flagger.app" && d["kind"] == "MetricTemplate" {
			c.metricTemplates[objectKey(d)] = d
		}
	}
	var out []Object
	for _, d := range docs {
		out = append(out, c.convert(d)...)
	}
	// MetricTemplates no Canary of the input used are converted on their own.
	for _, d := range docs {
		if group(d) == "flagger.app" && d["kind"] == "MetricTemplate" && !c.usedMetricTemplates[objectKey(d)] {
			out = append(out, c.metricTemplate(d))
		}
	}
	return out, nil
}

type converter struct {
	opts Options
	// metricTemplates are the input's Flagger MetricTemplates by namespace/name.
	metricTemplates     map[string]map[string]any
	usedMetricTemplates map[string]bool
}

func group(obj map[string]any) string {
	av, _ := obj["apiVersion"].(string)
	g, _, _ := strings.Cut(av, "/")
	return g
}

func objectKey(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	return ns + "/" + name
}

// describe names an input object: "argoproj.io/v1alpha1 Rollout shop/checkout".
func describe(obj map[string]any) string {
	av, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	key := strings.TrimPrefix(objectKey(obj), "/")
	return strings.TrimSpace(av + " " + kind + " " + key)
}

func (c *converter) convert(obj map[string]any) []Object {
	kind, _ := obj["kind"].(string)
	switch g := group(obj); {
	case g == "argoproj.io" && (kind == "AnalysisTemplate" || kind == "ClusterAnalysisTemplate" || kind == "AnalysisRun"):
		return []Object{c.argoAnalysis(obj)}
	case g == "argoproj.io" && kind == "Rollout":
		return c.argoRollout(obj)
	case g == "flagger.app" && kind == "Canary":
		return c.flaggerCanary(obj)
	case g == "flagger.app" && kind == "MetricTemplate":
		// Converted with the Canaries that use it, or on its own at the end.
		return nil
	case g == "argoproj.io" || g == "flagger.app":
		return []Object{{From: describe(obj), Notes: []string{kind + " has no promgate counterpart: not converted"}}}
	}
	return []Object{{From: describe(obj) + " (not an Argo Rollouts or Flagger object: printed as it is)", Object: obj}}
}

// output is the Object printed for obj, converted from the source src, without what a new
// object leaves empty or to the controller (creationTimestamp, status).
func output(from string, src *source, obj runtime.Object) Object {
	o := Object{From: from, Notes: src.notes}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		o.Notes = append(o.Notes, fmt.Sprintf("the converted %T cannot be encoded: %v", obj, err))
		return o
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	// The API server ignores the status of an object created; it is the controller's.
	delete(m, "status")
	o.Object = m
	return o
}

// Write prints objs as multi-document YAML: each object after a comment naming what it
// was converted from and one comment line per note.
func Write(w io.Writer, objs []Object) error {
	var b bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "# promgate convert: from %s\n", o.From)
		for _, n := range o.Notes {
			fmt.Fprintf(&b, "# not carried over: %s\n", strings.ReplaceAll(n, "\n", " "))
		}
		if o.Object == nil {
			continue
		}
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("writing %s: %w", o.From, err)
		}
		b.Write(y)
	}
	_, err := w.Write(b.Bytes())
	return err
}
