package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/api/v1alpha1"
)

// template is one AnalysisTemplate or ClusterAnalysisTemplate read from a file.
type template struct {
	File string
	Kind string
	Name string
	Spec v1alpha1.AnalysisTemplateSpec
}

func (t template) String() string { return t.Kind + "/" + t.Name }

// loadTemplates reads every document of a (multi-document) YAML file. Unknown fields are
// errors, so a typo never silently drops a condition.
func loadTemplates(path string) ([]template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var out []template
	for doc := 1; ; doc++ {
		b, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		if len(bytes.TrimSpace(b)) == 0 || isOnlyComments(b) {
			continue
		}
		t, err := decodeTemplate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		t.File = path
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no AnalysisTemplate or ClusterAnalysisTemplate found", path)
	}
	return out, nil
}

func isOnlyComments(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func decodeTemplate(b []byte) (template, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(b, &head); err != nil {
		return template{}, fmt.Errorf("not YAML: %w", err)
	}
	if strings.HasPrefix(head.APIVersion, "argoproj.io/") {
		return template{}, fmt.Errorf("apiVersion %s is Argo Rollouts'; change it to %s (the fields are the same)", head.APIVersion, v1alpha1.GroupVersion)
	}
	if head.APIVersion != v1alpha1.GroupVersion.String() {
		return template{}, fmt.Errorf("apiVersion %q: want %s", head.APIVersion, v1alpha1.GroupVersion)
	}
	switch head.Kind {
	case "AnalysisTemplate":
		var at v1alpha1.AnalysisTemplate
		if err := yaml.UnmarshalStrict(b, &at); err != nil {
			return template{}, fmt.Errorf("AnalysisTemplate: %w", err)
		}
		return template{Kind: head.Kind, Name: at.Name, Spec: at.Spec}, nil
	case "ClusterAnalysisTemplate":
		var cat v1alpha1.ClusterAnalysisTemplate
		if err := yaml.UnmarshalStrict(b, &cat); err != nil {
			return template{}, fmt.Errorf("ClusterAnalysisTemplate: %w", err)
		}
		return template{Kind: head.Kind, Name: cat.Name, Spec: cat.Spec}, nil
	}
	return template{}, fmt.Errorf("kind %q: want AnalysisTemplate or ClusterAnalysisTemplate", head.Kind)
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
