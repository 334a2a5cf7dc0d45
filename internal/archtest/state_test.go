package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// House style: no mutable package-level state. Sentinel errors, constant
// tables and compiled patterns are package-level values nobody changes; a
// pool, a lock, a counter or a variable that a function assigns belongs to
// the value that owns it (a server, a socket, a hub). This check is
// syntactic: a package-level variable of a sync or sync/atomic type, or
// one that a function assigns (x = …, x[k] = …, x.f = …, x++) is refused.
// Generated code (internal/opentera/pb's *.pb.go) is the protobuf
// runtime's and is not checked.
func TestNoMutablePackageState(t *testing.T) {
	var found []string
	for _, dir := range []string{"..", "../../cmd"} {
		found = append(found, mutableState(t, dir)...)
	}
	for _, f := range found {
		t.Error(f)
	}
}

// pkgFile is one parsed file of a package.
type pkgFile struct {
	path string
	f    *ast.File
}

// mutableState reports the package-level variables below root that hold
// or are changed as state.
func mutableState(t *testing.T, root string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs := map[string][]pkgFile{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".pb.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0) // with object resolution: Obj tells locals apart
		if err != nil {
			return err
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], pkgFile{path, f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, files := range pkgs {
		vars := map[string]bool{} // the package's package-level variables
		for _, pf := range files {
			for _, decl := range pf.f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if name.Name == "_" {
							continue
						}
						vars[name.Name] = true
						var val ast.Expr
						if i < len(vs.Values) {
							val = vs.Values[i]
						}
						if syncType(vs.Type) || syncValue(val) {
							out = append(out, fset.Position(name.Pos()).String()+": package-level "+name.Name+" is a lock, pool or atomic: put it on the value that owns it")
						}
					}
				}
			}
		}
		for _, pf := range files {
			for _, decl := range pf.f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					var lhs []ast.Expr
					switch s := n.(type) {
					case *ast.AssignStmt:
						if s.Tok != token.DEFINE {
							lhs = s.Lhs
						}
					case *ast.IncDecStmt:
						lhs = []ast.Expr{s.X}
					}
					for _, e := range lhs {
						if id := rootIdent(e); id != nil && vars[id.Name] && isPackageLevel(id, pf.f) {
							out = append(out, fset.Position(id.Pos()).String()+": "+fd.Name.Name+" changes package-level "+id.Name)
						}
					}
					return true
				})
			}
		}
	}
	return out
}

// rootIdent is the variable an assignment target starts from: x in x,
// x.f, x[k], *x, (x).f.
func rootIdent(e ast.Expr) *ast.Ident {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		default:
			return nil
		}
	}
}

// isPackageLevel reports whether id names a package-level object: one of
// this file's (resolved to its file-scope declaration) or unresolved in
// this file (declared in another file of the package), never a local.
func isPackageLevel(id *ast.Ident, f *ast.File) bool {
	if id.Obj == nil {
		return true
	}
	return f.Scope.Lookup(id.Name) == id.Obj
}

// syncType reports a type from sync or sync/atomic (sync.Pool,
// atomic.Int64, *sync.Mutex…).
func syncType(e ast.Expr) bool {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if ix, ok := e.(*ast.IndexExpr); ok { // atomic.Pointer[T]
		e = ix.X
	}
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && (pkg.Name == "sync" || pkg.Name == "atomic")
}

// syncValue reports a value of a sync or atomic type: sync.Pool{…},
// &sync.Mutex{}, new(atomic.Int64).
func syncValue(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.UnaryExpr:
		return syncValue(x.X)
	case *ast.CompositeLit:
		return syncType(x.Type)
	case *ast.CallExpr:
		if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "new" && len(x.Args) == 1 {
			return syncType(x.Args[0])
		}
	}
	return false
}
