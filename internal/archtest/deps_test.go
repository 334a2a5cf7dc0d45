package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rehabrtc/rehabrtc/"

// core packages import no package of ours: the domain (session) and the
// libraries that know nothing of rehabrtc.
var core = []string{
	"internal/session",
	"internal/hub",
	"internal/socketio",
	"internal/web",
	"internal/config",
	"internal/routes",
	"internal/apikey",
	"internal/clientaddr",
	"internal/httpserver",
	"internal/opentera/pb",
	"internal/testutil",
	"internal/sfu",
}

// leaf packages are libraries that import no package of ours and know
// nothing of rehabrtc (system-call helpers): core packages may use them.
var leaf = []string{
	"internal/rawudp",
}

// outer packages are the adapters that cmd/rehabrtc picks and wires
// together: no package under internal/ imports them. Any other package
// (storetest, teratest, a media plane) may import anything but these and
// cmd/.
var outer = []string{
	"internal/endpoint",
	"internal/childproc",
	"internal/gateway",
	"internal/httpapi",
	"internal/opentera",
	"internal/ehrc",
	"internal/store/boltstore",
	"internal/store/redisstore",
	"internal/cluster",
	"internal/ports",
	"internal/relay",
}

// forbidden lists standard packages a package must not import: routing and
// HTTP are the runners' and the gateway's business, not the domain's.
var forbidden = map[string][]string{
	"internal/session": {"net/http"},
}

func TestDependencyDirection(t *testing.T) {
	pkgs := imports(t, "..")
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages under internal/: wrong directory?", len(pkgs))
	}
	for _, p := range slices.Concat(core, leaf, outer) {
		if _, ok := pkgs[p]; !ok {
			t.Errorf("%s is listed here but does not exist: update the lists", p)
		}
	}
	for pkg, imps := range pkgs {
		for _, imp := range imps.prod {
			if !strings.HasPrefix(imp, module) {
				if slices.Contains(forbidden[pkg], imp) {
					t.Errorf("%s imports %s", pkg, imp)
				}
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			switch {
			case strings.HasPrefix(dep, "cmd/"):
				t.Errorf("%s imports %s: nothing imports a command", pkg, dep)
			case slices.Contains(leaf, pkg):
				t.Errorf("%s is a leaf package but imports %s", pkg, dep)
			case slices.Contains(core, pkg) && !slices.Contains(leaf, dep):
				t.Errorf("%s is a core package but imports %s", pkg, dep)
			case slices.Contains(outer, dep):
				t.Errorf("%s imports %s, an adapter only cmd/rehabrtc wires: pass what it needs as an interface, or move it into a package of its own", pkg, dep)
			case dep == "internal/testutil" && !strings.HasSuffix(pkg, "test"):
				t.Errorf("%s imports testutil outside its tests", pkg)
			}
		}
	}
}

// pkgImports are the imports of one package's non-test files.
type pkgImports struct{ prod []string }

// imports parses the import clauses of every package below root (the
// internal/ directory), keyed by "internal/<dir>".
func imports(t *testing.T, root string) map[string]pkgImports {
	t.Helper()
	out := map[string]pkgImports{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := "internal/" + filepath.ToSlash(rel)
		p := out[pkg]
		for _, s := range f.Imports {
			imp, _ := strconv.Unquote(s.Path.Value)
			if !slices.Contains(p.prod, imp) {
				p.prod = append(p.prod, imp)
			}
		}
		out[pkg] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "session")); err != nil {
		t.Fatalf("no session package below %s: %v", root, err)
	}
	return out
}
