// Package validate checks the Kubernetes manifests in deploy/kubernetes by
// decoding them strictly into the Kubernetes API types (an unknown or
// misspelled field fails), and checks what the README promises of them. It
// is a module of its own so that k8s.io/api stays out of xdpconnect's.
package validate

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// docs splits every manifest file into its YAML documents.
func docs(t *testing.T) map[string][][]byte {
	t.Helper()
	files, err := filepath.Glob("../kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][][]byte{}
	for _, f := range files {
		if filepath.Base(f) == "prometheus-scrape.yaml" {
			continue // not a Kubernetes object: TestScrapeConfig
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(d)) != "" {
				out[filepath.Base(f)] = append(out[filepath.Base(f)], []byte(d))
			}
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// decode decodes doc strictly into the type of its kind.
func decode(t *testing.T, name string, doc []byte) any {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var obj any
	switch tm.APIVersion + "/" + tm.Kind {
	case "batch/v1/Job":
		obj = &batchv1.Job{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "v1/PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	default:
		t.Fatalf("%s: unexpected kind %s/%s", name, tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %s: %v", name, tm.Kind, err)
	}
	return obj
}

func TestManifests(t *testing.T) {
	var run, rfc, merge *batchv1.Job
	var svc *corev1.Service
	var pvc *corev1.PersistentVolumeClaim
	for name, ds := range docs(t) {
		for _, d := range ds {
			switch o := decode(t, name, d).(type) {
			case *batchv1.Job:
				switch args := o.Spec.Template.Spec.Containers[0].Args; {
				case o.Spec.CompletionMode != nil && *o.Spec.CompletionMode == batchv1.IndexedCompletion && len(args) > 0 && args[0] == "rfc9411":
					rfc = o
				case o.Spec.CompletionMode != nil && *o.Spec.CompletionMode == batchv1.IndexedCompletion:
					run = o
				default:
					merge = o
				}
			case *corev1.Service:
				svc = o
			case *corev1.PersistentVolumeClaim:
				pvc = o
			}
		}
	}
	if run == nil || rfc == nil || merge == nil || svc == nil || pvc == nil {
		t.Fatalf("want Indexed run and rfc9411 Jobs, a merge Job, a Service and a PVC; got %v %v %v %v %v", run != nil, rfc != nil, merge != nil, svc != nil, pvc != nil)
	}
	checkRFCJob(t, rfc, pvc)
	s := run.Spec
	if s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism {
		t.Fatal("run Job: completions and parallelism must be equal (one pod per shard, all at once)")
	}
	n := *s.Completions
	pod := s.Template.Spec
	if !pod.HostNetwork {
		t.Fatal("run Job: needs hostNetwork (XDP on the node's NIC)")
	}
	spread := false
	for _, c := range pod.TopologySpreadConstraints {
		spread = spread || c.TopologyKey == "kubernetes.io/hostname" && c.MaxSkew == 1 && c.WhenUnsatisfiable == corev1.DoNotSchedule
	}
	if !spread && pod.Affinity == nil {
		t.Fatal("run Job: one pod per node needs a hostname topology spread (or anti-affinity)")
	}
	if len(pod.Containers) != 1 {
		t.Fatal("run Job: one container")
	}
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--shard=auto/" + strconv.Itoa(int(n)), "--run-id=", "--start-at=$(START_AT)", "--json=/reports/", "$(JOB_COMPLETION_INDEX)", "--metrics-addr=0.0.0.0:9464"} {
		if !strings.Contains(args, want) {
			t.Fatalf("run Job args %q lack %q", args, want)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged != nil && *sc.Privileged || sc.Capabilities == nil {
		t.Fatal("run Job: capabilities, not privileged")
	}
	caps := map[corev1.Capability]bool{}
	for _, a := range sc.Capabilities.Add {
		caps[a] = true
	}
	// The README's setcap line: cap_net_admin,cap_net_raw,cap_bpf,cap_perfmon,cap_ipc_lock.
	for _, want := range []corev1.Capability{"NET_ADMIN", "NET_RAW", "BPF", "PERFMON", "IPC_LOCK"} {
		if !caps[want] {
			t.Fatalf("run Job: capability %s missing", want)
		}
	}
	if run.Spec.Template.Labels["xdpconnect/run-id"] == "" || !strings.Contains(args, "--run-id="+run.Spec.Template.Labels["xdpconnect/run-id"]) {
		t.Fatal("run Job: the pods' xdpconnect/run-id label (the scrape job's run_id) must equal --run-id")
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Fatal("run Job: resource requests and limits")
	}
	if !bytes.Contains([]byte(strings.Join(merge.Spec.Template.Spec.Containers[0].Command, " ")), []byte("xdpconnect merge")) {
		t.Fatal("merge Job: runs xdpconnect merge")
	}
	if svc.Spec.Selector["app.kubernetes.io/name"] != pod.Containers[0].Name {
		t.Fatalf("Service selects %v", svc.Spec.Selector)
	}
}

// checkRFCJob: the RFC 9411 Job's shards meet in an exchange directory on
// the shared (ReadWriteMany) volume, one pod per node, all at once, with
// the capabilities of a run.
func checkRFCJob(t *testing.T, j *batchv1.Job, pvc *corev1.PersistentVolumeClaim) {
	t.Helper()
	s := j.Spec
	if s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism {
		t.Fatal("rfc9411 Job: completions and parallelism must be equal: every shard waits for all the others")
	}
	pod := s.Template.Spec
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--shard=auto/" + strconv.Itoa(int(*s.Completions)), "--exchange=/reports/", "--run-id=" + s.Template.Labels["xdpconnect/run-id"], "$(JOB_COMPLETION_INDEX)"} {
		if !strings.Contains(args, want) {
			t.Fatalf("rfc9411 Job args %q lack %q", args, want)
		}
	}
	if !pod.HostNetwork || len(pod.TopologySpreadConstraints) == 0 || c.SecurityContext == nil || c.SecurityContext.Capabilities == nil || len(c.SecurityContext.Capabilities.Add) < 5 {
		t.Fatal("rfc9411 Job: hostNetwork, one pod per node and the run's capabilities")
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			mounted = mounted || m.Name == v.Name && m.MountPath == "/reports" && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name
		}
	}
	rwx := false
	for _, m := range pvc.Spec.AccessModes {
		rwx = rwx || m == corev1.ReadWriteMany
	}
	if !mounted || !rwx {
		t.Fatal("rfc9411 Job: the exchange directory must be on the shared ReadWriteMany claim")
	}
}

// The scrape job sets run_id and shard as target labels from the pod's
// run-id label and completion index, which the Job's pods carry.
func TestScrapeConfig(t *testing.T) {
	b, err := os.ReadFile("../kubernetes/prometheus-scrape.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string                  `json:"job_name"`
			KubernetesSD  []struct{ Role string } `json:"kubernetes_sd_configs"`
			RelabelConfig []struct {
				SourceLabels []string `json:"source_labels"`
				TargetLabel  string   `json:"target_label"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil || len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("scrape config: %v", err)
	}
	sc := cfg.ScrapeConfigs[0]
	if len(sc.KubernetesSD) != 1 || sc.KubernetesSD[0].Role != "pod" {
		t.Fatal("want pod discovery")
	}
	from := map[string]string{}
	for _, r := range sc.RelabelConfig {
		if r.TargetLabel != "" && len(r.SourceLabels) == 1 {
			from[r.TargetLabel] = r.SourceLabels[0]
		}
	}
	if from["run_id"] != "__meta_kubernetes_pod_label_xdpconnect_run_id" ||
		from["shard"] != "__meta_kubernetes_pod_annotation_batch_kubernetes_io_job_completion_index" {
		t.Fatalf("target labels from %v", from)
	}
}
