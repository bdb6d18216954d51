// Package install renders promgate's installation the two ways users install it, kustomize
// (config/) and Helm (charts/promgate), into objects: what the install tests compare with
// no cluster, and what the end-to-end suites apply to the test bed.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/promgate/promgate/test/testbin"
)

const (
	// Namespace is where both renderings install the controller.
	Namespace = "promgate-system"
	// Release is the Helm release name whose objects are named as kustomize's are.
	Release = "promgate"
	// KubeVersion is the bed's control plane, the cluster Helm renders for.
	KubeVersion = "v1.36.3"
	// ControllerContainer names the manager's container in the Deployment.
	ControllerContainer = "controller"
)

// Kustomize builds the kustomization at dir (relative to the repository root, e.g.
// "config/default") with the test bed's kubectl, whose kustomize users run with apply -k.
func Kustomize(ctx context.Context, dir string) ([]*unstructured.Unstructured, error) {
	root, err := testbin.RepoRoot()
	if err != nil {
		return nil, err
	}
	kubectl, err := tool("kubectl")
	if err != nil {
		return nil, err
	}
	out, err := run(exec.CommandContext(ctx, kubectl, "kustomize", filepath.Join(root, dir)))
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w", dir, err)
	}
	return Decode(out)
}

// Helm renders charts/promgate as release Release in Namespace, CRDs included, with the
// extra helm template arguments given (--set, -f).
func Helm(ctx context.Context, args ...string) ([]*unstructured.Unstructured, error) {
	return HelmAs(ctx, Release, Namespace, args...)
}

// HelmAs renders the chart as another release, in another namespace: a second install on
// one cluster.
func HelmAs(ctx context.Context, release, namespace string, args ...string) ([]*unstructured.Unstructured, error) {
	root, err := testbin.RepoRoot()
	if err != nil {
		return nil, err
	}
	helm, err := tool("helm")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, helm, append([]string{
		"template", release, filepath.Join(root, "charts", "promgate"),
		"--namespace", namespace, "--kube-version", KubeVersion, "--include-crds",
	}, args...)...)
	out, err := run(cmd)
	if err != nil {
		return nil, fmt.Errorf("helm template: %w", err)
	}
	return Decode(out)
}

// tool is a binary of the test bed's tools. A first build takes minutes (make testbin does
// it ahead); it is bounded by the test's timeout, not by a render's context.
func tool(name string) (string, error) {
	return testbin.Path(context.Background(), name, nil)
}

// run returns the command's standard output, or an error carrying its standard error.
func run(cmd *exec.Cmd) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// Decode splits multi-document YAML into objects, leaving out empty documents.
func Decode(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decoding the rendered objects: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// Find is the object of that kind and name, or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// Into converts obj into a typed object.
func Into(obj *unstructured.Unstructured, typed any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, typed, true); err != nil {
		return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return nil
}

// Controller is the rendered manager Deployment and its controller container.
func Controller(objs []*unstructured.Unstructured) (*appsv1.Deployment, *corev1.Container, error) {
	var found *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			if found != nil {
				return nil, nil, errors.New("more than one Deployment rendered")
			}
			found = o
		}
	}
	if found == nil {
		return nil, nil, errors.New("no Deployment rendered")
	}
	var d appsv1.Deployment
	if err := Into(found, &d); err != nil {
		return nil, nil, err
	}
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == ControllerContainer {
			return &d, &d.Spec.Template.Spec.Containers[i], nil
		}
	}
	return nil, nil, fmt.Errorf("the Deployment %s has no container %q", d.Name, ControllerContainer)
}

// ContainerProcess is how a kubelet would start c in a pod named pod in namespace: its
// flags after the image's entrypoint ("/promgate controller") with $(VAR) references
// expanded, and its environment resolved from values and the downward API. A command of
// its own or an environment source the bed cannot resolve is an error, rather than a
// process that differs from the pod.
func ContainerProcess(c *corev1.Container, namespace, pod string) (args, env []string, err error) {
	if len(c.Command) > 0 {
		return nil, nil, fmt.Errorf("container %s overrides the image's entrypoint with %q", c.Name, c.Command)
	}
	fields := map[string]string{"metadata.namespace": namespace, "metadata.name": pod}
	vars := map[string]string{}
	for _, e := range c.Env {
		v := expand(e.Value, vars)
		if e.ValueFrom != nil {
			ref := e.ValueFrom.FieldRef
			if ref == nil || fields[ref.FieldPath] == "" {
				return nil, nil, fmt.Errorf("container %s: env %s comes from a source the bed cannot resolve", c.Name, e.Name)
			}
			v = fields[ref.FieldPath]
		}
		vars[e.Name] = v
		env = append(env, e.Name+"="+v)
	}
	for _, a := range c.Args {
		args = append(args, expand(a, vars))
	}
	return args, env, nil
}

// expand replaces $(NAME) by the variable's value as the kubelet does: $$ is a literal $,
// and a reference to an undefined variable is left as it is.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			switch s[i+1] {
			case '$':
				b.WriteByte('$')
				i++
				continue
			case '(':
				if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
					if v, ok := vars[s[i+2:i+2+end]]; ok {
						b.WriteString(v)
						i += end + 2
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
