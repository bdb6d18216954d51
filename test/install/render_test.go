package install

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/test/testbed"
	"github.com/promgate/promgate/test/testbin"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func kustomize(t *testing.T, dirs ...string) []*unstructured.Unstructured {
	t.Helper()
	var all []*unstructured.Unstructured
	for _, d := range dirs {
		objs, err := Kustomize(ctx(t), d)
		require.NoError(t, err)
		all = append(all, objs...)
	}
	return all
}

func helm(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Helm(ctx(t), args...)
	require.NoError(t, err)
	return objs
}

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	root, err := testbin.RepoRoot()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, rel))
	require.NoError(t, err)
	return b
}

// The optional parts, as kustomize directories and as the chart's values that enable them.
var (
	monitoringDirs   = []string{"config/default", "config/prometheus", "config/grafana"}
	monitoringValues = []string{"--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboards.enabled=true"}
)

// TestDefaultInstall checks what config/default installs: the controller runs as it must
// in production (two replicas electing a leader, probes on their own port, the restricted
// Pod Security Standard, bounded resources, spread over nodes, stopping gracefully) and
// everything around it points at the right objects.
func TestDefaultInstall(t *testing.T) {
	objs := kustomize(t, "config/default")
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		assert.NotEqual(t, "Secret", o.GetKind(), "the webhook token Secret is referenced, never shipped")
		if o.GetKind() != "Namespace" && o.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(o.GetKind(), "Cluster") {
			assert.Equal(t, Namespace, o.GetNamespace(), "%s %s", o.GetKind(), o.GetName())
		}
	}
	assert.Equal(t, map[string]int{
		"Namespace": 1, "CustomResourceDefinition": 4, "ServiceAccount": 1, "ClusterRole": 3, "ClusterRoleBinding": 1,
		"Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 2, "PodDisruptionBudget": 1,
	}, kinds)
	assert.Equal(t, "restricted", Find(objs, "Namespace", Namespace).GetLabels()["pod-security.kubernetes.io/enforce"])

	d, c, err := Controller(objs)
	require.NoError(t, err)
	pod := d.Spec.Template.Spec
	assert.Equal(t, int32(2), *d.Spec.Replicas)
	assert.Equal(t, 0, d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue(), "an update never removes the standby first")
	assert.Contains(t, c.Args, "--leader-elect")
	assert.Contains(t, c.Args, "--leader-election-namespace=$(POD_NAMESPACE)")
	assert.Equal(t, "metadata.namespace", c.Env[0].ValueFrom.FieldRef.FieldPath)

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	assert.Equal(t, map[string]int32{"metrics": 8080, "probes": 8081, "webhook": 9444}, ports)
	assert.Contains(t, c.Args, "--metrics-bind-address=:8080")
	assert.Contains(t, c.Args, "--health-probe-bind-address=:8081")
	assert.Contains(t, c.Args, "--alert-webhook-bind-address=:9444")
	assert.Contains(t, c.Args, "--alert-webhook-token-secret=$(POD_NAMESPACE)/promgate-alert-webhook")
	require.NotNil(t, c.LivenessProbe)
	require.NotNil(t, c.ReadinessProbe)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "probes", c.LivenessProbe.HTTPGet.Port.StrVal)
	assert.Equal(t, "probes", c.ReadinessProbe.HTTPGet.Port.StrVal)

	// The restricted Pod Security Standard, field by field.
	require.NotNil(t, pod.SecurityContext)
	assert.Equal(t, ptr.To(true), pod.SecurityContext.RunAsNonRoot)
	assert.Equal(t, ptr.To[int64](65532), pod.SecurityContext.RunAsUser, "the image's user")
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type)
	require.NotNil(t, c.SecurityContext)
	assert.Equal(t, ptr.To(false), c.SecurityContext.AllowPrivilegeEscalation)
	assert.Equal(t, ptr.To(true), c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.Nil(t, c.SecurityContext.Capabilities.Add)

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		assert.False(t, req.IsZero(), "a %s request", r)
		assert.False(t, lim.IsZero(), "a %s limit", r)
	}
	require.Len(t, pod.TopologySpreadConstraints, 1)
	assert.Equal(t, "kubernetes.io/hostname", pod.TopologySpreadConstraints[0].TopologyKey)
	podLabels := labels.Set(d.Spec.Template.Labels)
	assert.True(t, selects(t, pod.TopologySpreadConstraints[0].LabelSelector.MatchLabels, podLabels))
	assert.Equal(t, ptr.To[int64](40), pod.TerminationGracePeriodSeconds, "past the manager's 30 s graceful shutdown")

	var sa corev1.ServiceAccount
	require.NoError(t, Into(Find(objs, "ServiceAccount", pod.ServiceAccountName), &sa))
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range objs {
			if o.GetKind() != kind {
				continue
			}
			var b rbacv1.RoleBinding
			require.NoError(t, Into(o, &b))
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: Namespace}}, b.Subjects)
			assert.NotNil(t, Find(objs, b.RoleRef.Kind, b.RoleRef.Name), "%s %s binds a role that is installed", kind, b.Name)
		}
	}

	for _, name := range []string{"promgate-metrics", "promgate-alert-webhook"} {
		var svc corev1.Service
		require.NoError(t, Into(Find(objs, "Service", name), &svc))
		assert.True(t, selects(t, svc.Spec.Selector, podLabels), "Service %s selects the controller's pods", name)
		require.Len(t, svc.Spec.Ports, 1)
		assert.Contains(t, ports, svc.Spec.Ports[0].TargetPort.StrVal, "Service %s targets a named container port", name)
	}
	var pdb policyv1.PodDisruptionBudget
	require.NoError(t, Into(Find(objs, "PodDisruptionBudget", "promgate"), &pdb))
	assert.Equal(t, 1, pdb.Spec.MinAvailable.IntValue())
	assert.True(t, selects(t, pdb.Spec.Selector.MatchLabels, podLabels))

	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			plural, _, _ := strings.Cut(o.GetName(), ".")
			var want map[string]any
			require.NoError(t, yaml.Unmarshal(repoFile(t, "config/crd/bases/promgate.io_"+plural+".yaml"), &want))
			assert.Equal(t, want, o.Object, "CRD %s is config/crd/bases'", o.GetName())
		}
	}
}

// selects reports whether selector matches the labels.
func selects(t *testing.T, selector map[string]string, set labels.Set) bool {
	t.Helper()
	require.NotEmpty(t, selector)
	return labels.SelectorFromSet(selector).Matches(set)
}

// TestAggregatedUserRoles: the view and edit roles join the built-in ones, so namespace
// viewers read releases and editors send the documented status patches.
func TestAggregatedUserRoles(t *testing.T) {
	objs := kustomize(t, "config/default")
	var view, edit rbacv1.ClusterRole
	require.NoError(t, Into(Find(objs, "ClusterRole", "promgate-view"), &view))
	require.NoError(t, Into(Find(objs, "ClusterRole", "promgate-edit"), &edit))
	for _, l := range []string{"view", "edit", "admin"} {
		assert.Equal(t, "true", view.Labels["rbac.authorization.k8s.io/aggregate-to-"+l], "viewers, editors and admins read releases")
	}
	assert.Equal(t, "true", edit.Labels["rbac.authorization.k8s.io/aggregate-to-edit"])
	assert.Equal(t, "true", edit.Labels["rbac.authorization.k8s.io/aggregate-to-admin"])
	assert.NotContains(t, edit.Labels, "rbac.authorization.k8s.io/aggregate-to-view", "viewers may not drive releases")

	allows := func(r rbacv1.ClusterRole, verb, resource string) bool {
		return slices.ContainsFunc(r.Rules, func(p rbacv1.PolicyRule) bool {
			return slices.Contains(p.APIGroups, "promgate.io") && slices.Contains(p.Resources, resource) && slices.Contains(p.Verbs, verb)
		})
	}
	for _, res := range []string{"rollouts", "analysisruns", "analysistemplates", "clusteranalysistemplates"} {
		for _, verb := range []string{"get", "list", "watch"} {
			assert.True(t, allows(view, verb, res), "view: %s %s", verb, res)
		}
		assert.False(t, allows(view, "patch", res), "view: no patch %s", res)
	}
	assert.True(t, allows(edit, "patch", "rollouts/status"), "editors approve, jump, abort, retry and promote with status patches")
	assert.True(t, allows(edit, "create", "rollouts"))
	assert.False(t, allows(edit, "create", "analysisruns"), "runs are the controller's")
}

// TestControllerArgsAreFlags: every argument either rendering passes is a flag of
// `promgate controller`, so neither install starts a controller that exits on its flags.
func TestControllerArgsAreFlags(t *testing.T) {
	out, _ := exec.Command(testbed.PromgateBinary(t), "controller", "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	require.True(t, flags["leader-elect"], "parsed the flags from: %s", out)
	for name, objs := range map[string][]*unstructured.Unstructured{
		"kustomize": kustomize(t, "config/default"),
		"helm":      helm(t, "--set", "leaderElection.leaseDuration=5s,leaderElection.renewDeadline=3s,leaderElection.retryPeriod=1s,extraArgs[0]=--rollout-workers=32,shardLabelSelector=promgate.io/shard=a"),
	} {
		_, c, err := Controller(objs)
		require.NoError(t, err)
		if name == "helm" {
			assert.Contains(t, c.Args, "--shard-label-selector=promgate.io/shard=a", "a release per shard")
		}
		for _, a := range c.Args {
			flag, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			assert.True(t, flags[flag], "%s renders %s, which promgate controller does not take", name, a)
		}
	}
}

// TestHelmMatchesKustomize renders the chart with its defaults, and with its optional
// parts enabled, and compares it with config/ object by object: the same kinds and names,
// and every field the same (container args, env, probes, security context, RBAC rules,
// selectors, alert rules, dashboard) but the labels Helm adds to its objects' metadata.
// Only the Namespace is kustomize's alone: helm install --create-namespace makes it.
func TestHelmMatchesKustomize(t *testing.T) {
	for name, tc := range map[string]struct {
		dirs   []string
		values []string
	}{
		"defaults":                  {[]string{"config/default"}, nil},
		"monitoring and dashboards": {monitoringDirs, monitoringValues},
	} {
		t.Run(name, func(t *testing.T) {
			k := index(kustomize(t, tc.dirs...))
			h := index(helm(t, tc.values...))
			delete(k, objectKey{Kind: "Namespace", Name: Namespace})
			assert.ElementsMatch(t, slices.Collect(maps.Keys(k)), slices.Collect(maps.Keys(h)), "the same objects")
			for key, ko := range k {
				ho, ok := h[key]
				if !ok {
					continue
				}
				want, got := ko.DeepCopy(), ho.DeepCopy()
				for l, v := range want.GetLabels() {
					assert.Equal(t, v, got.GetLabels()[l], "%v: label %s", key, l)
				}
				for _, o := range []*unstructured.Unstructured{want, got} {
					unstructured.RemoveNestedField(o.Object, "metadata", "labels")
				}
				// Field by field, so a difference prints that field, not the whole object.
				for _, f := range slices.Sorted(maps.Keys(want.Object)) {
					assert.Equal(t, want.Object[f], got.Object[f], "%v: %s", key, f)
				}
				assert.ElementsMatch(t, slices.Collect(maps.Keys(want.Object)), slices.Collect(maps.Keys(got.Object)), "%v: top-level fields", key)
			}
		})
	}
}

type objectKey struct{ Kind, Namespace, Name string }

func index(objs []*unstructured.Unstructured) map[objectKey]*unstructured.Unstructured {
	m := map[objectKey]*unstructured.Unstructured{}
	for _, o := range objs {
		m[objectKey{o.GetKind(), o.GetNamespace(), o.GetName()}] = o
	}
	return m
}

// TestHelmSchemaRejectsBadValues: a misspelled, mistyped or out-of-range value fails the
// install and the message names the field.
func TestHelmSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct{ set, field string }{
		{"replicas=two", "'/replicas'"},
		{"replica=2", "'replica'"},
		{"image.pullPolicy=Sometimes", "'/image/pullPolicy'"},
		{"image.digest=latest", "'/image/digest'"},
		{"leaderElection.leaseDuration=15 seconds", "'/leaderElection/leaseDuration'"},
		{"prometheus.address=prometheus:9090", "'/prometheus/address'"},
		{"webhook.port=0", "'/webhook/port'"},
		{"webhook.tokenSecret.name=Not_A_Name", "'/webhook/tokenSecret/name'"},
		{"serviceMonitor.enable=true", "'enable'"},
		{"extraArgs[0]=verbose", "'/extraArgs/0'"},
		{"resources.limits.memory=true", "'/resources/limits/memory'"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := Helm(ctx(t), "--set", tc.set)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "values don't meet the specifications of the schema")
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	_, err := Helm(ctx(t), "--set", "leaderElection.enabled=false")
	assert.ErrorContains(t, err, "replicas above 1 need leaderElection.enabled", "two replicas without leader election would both act")
	_, err = Helm(ctx(t), "--set", "leaderElection.enabled=false,replicas=1")
	assert.NoError(t, err)
}

// TestControllerRoleIsGenerated: the ClusterRole both renderings install has exactly the
// rules controller-gen generates from the code's kubebuilder markers, and the Lease Role
// the ones config/rbac declares.
func TestControllerRoleIsGenerated(t *testing.T) {
	root, err := testbin.RepoRoot()
	require.NoError(t, err)
	gen, err := tool("controller-gen")
	require.NoError(t, err)
	out := t.TempDir()
	cmd := exec.CommandContext(ctx(t), gen, "rbac:roleName=promgate-controller", "paths=./analysis/...", "paths=./providers/...", "paths=./rollout/...", "paths=./cmd/...", "output:rbac:artifacts:config="+out)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	generated, err := os.ReadFile(filepath.Join(out, "role.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(generated), string(repoFile(t, "config/rbac/role.yaml")), "config/rbac/role.yaml is out of date: run make generate")

	var role rbacv1.ClusterRole
	require.NoError(t, yaml.UnmarshalStrict(generated, &role))
	var lease rbacv1.Role
	require.NoError(t, yaml.UnmarshalStrict(repoFile(t, "config/rbac/leader_election_role.yaml"), &lease))
	for name, objs := range map[string][]*unstructured.Unstructured{"kustomize": kustomize(t, "config/default"), "helm": helm(t)} {
		var got rbacv1.ClusterRole
		require.NoError(t, Into(Find(objs, "ClusterRole", "promgate-controller"), &got))
		assert.Equal(t, role.Rules, got.Rules, "%s installs the generated ClusterRole", name)
		var gotLease rbacv1.Role
		require.NoError(t, Into(Find(objs, "Role", "promgate-leader-election"), &gotLease))
		assert.Equal(t, lease.Rules, gotLease.Rules, "%s installs the Lease Role", name)
	}
}

// TestChartCopies: what the chart cannot read from config/ (Helm reads only its own
// folder) is copied there by make generate and must not drift.
func TestChartCopies(t *testing.T) {
	root, err := testbin.RepoRoot()
	require.NoError(t, err)
	crds, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	require.NoError(t, err)
	copies, err := filepath.Glob(filepath.Join(root, "charts", "promgate", "crds", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, copies, len(crds), "charts/promgate/crds holds every CRD and nothing else: run make generate")
	for _, f := range crds {
		assert.Equal(t, string(repoFile(t, "config/crd/bases/"+filepath.Base(f))), string(repoFile(t, "charts/promgate/crds/"+filepath.Base(f))),
			"charts/promgate/crds/%s is out of date: run make generate", filepath.Base(f))
	}
	for src, dst := range map[string]string{
		"config/rbac/role.yaml":                 "charts/promgate/files/role.yaml",
		"config/rbac/leader_election_role.yaml": "charts/promgate/files/leader_election_role.yaml",
		"config/prometheus/prometheusrule.yaml": "charts/promgate/files/prometheusrule.yaml",
		"config/grafana/promgate.json":          "charts/promgate/files/promgate.json",
	} {
		assert.Equal(t, string(repoFile(t, src)), string(repoFile(t, dst)), "%s is out of date: run make generate", dst)
	}
}
