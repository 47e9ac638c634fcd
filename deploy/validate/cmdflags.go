package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Flag is one flag of a tfcat command, as cmd/tfcat declares it.
type Flag struct {
	Name    string
	Aliases []string
	Bool    bool // takes no value (--quiet), or one after '=' (--quiet=false)
}

// Command is a tfcat command's flags by every name and alias.
type Command map[string]*Flag

// LoadCommands reads tfcat's commands and their flags from the Go source of
// cmd/tfcat, without building it (that needs libtensorflow): each function
// returning &cli.Command{Name: "...", Flags: ...} whose Flags is a []cli.Flag
// literal, an append of such lists, or a variable holding one, and whose
// elements are &cli.XFlag{Name: ..., Aliases: ...} literals, variables
// holding one, or calls of functions returning one. Anything else is an
// error, so that a change of style in cmd/tfcat is noticed rather than
// checked against a partial list.
func LoadCommands(dir string) (map[string]Command, error) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	r := resolver{fset: fset, vars: map[string]ast.Expr{}, funcs: map[string]*ast.FuncDecl{}}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, p, src, 0)
		if err != nil {
			return nil, err
		}
		if f.Name.Name != "main" {
			continue
		}
		files = append(files, f)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					r.funcs[d.Name.Name] = d
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if vs, ok := s.(*ast.ValueSpec); ok && len(vs.Values) == len(vs.Names) {
						for i, n := range vs.Names {
							r.vars[n.Name] = vs.Values[i]
						}
					}
				}
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no Go files of package main", dir)
	}
	cmds := map[string]Command{}
	for _, fn := range r.funcs {
		lit := commandLiteral(fn)
		if lit == nil {
			continue
		}
		var name string
		var flags ast.Expr
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			switch key(kv) {
			case "Name":
				name, err = r.str(kv.Value)
				if err != nil {
					return nil, err
				}
			case "Flags":
				flags = kv.Value
			}
		}
		if name == "" {
			continue
		}
		cmd := Command{}
		if flags != nil {
			list, err := r.flagList(flags, 0)
			if err != nil {
				return nil, fmt.Errorf("tfcat %s: %w", name, err)
			}
			for _, f := range list {
				for _, n := range append([]string{f.Name}, f.Aliases...) {
					if cmd[n] != nil {
						return nil, fmt.Errorf("tfcat %s: flag %s declared twice", name, n)
					}
					cmd[n] = f
				}
			}
		}
		// urfave/cli adds --help (-h) to every command.
		if cmd["help"] == nil {
			h := &Flag{Name: "help", Aliases: []string{"h"}, Bool: true}
			cmd["help"], cmd["h"] = h, h
		}
		cmds[name] = cmd
	}
	if len(cmds) == 0 {
		return nil, fmt.Errorf("%s: no function returns a &cli.Command{Name: ...} literal", dir)
	}
	return cmds, nil
}

// commandLiteral is the &cli.Command{...} that fn returns, if it returns one.
func commandLiteral(fn *ast.FuncDecl) *ast.CompositeLit {
	if fn.Body == nil || fn.Type.Results == nil || len(fn.Type.Results.List) != 1 {
		return nil
	}
	if !isCLIType(fn.Type.Results.List[0].Type, "Command", true) {
		return nil
	}
	for _, s := range fn.Body.List {
		ret, ok := s.(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 {
			continue
		}
		if u, ok := ret.Results[0].(*ast.UnaryExpr); ok && u.Op == token.AND {
			if lit, ok := u.X.(*ast.CompositeLit); ok && isCLIType(lit.Type, "Command", false) {
				return lit
			}
		}
	}
	return nil
}

// isCLIType reports whether t is cli.<name> (or *cli.<name> when ptr).
func isCLIType(t ast.Expr, name string, ptr bool) bool {
	if ptr {
		s, ok := t.(*ast.StarExpr)
		if !ok {
			return false
		}
		t = s.X
	}
	sel, ok := t.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "cli"
}

func key(kv *ast.KeyValueExpr) string {
	if id, ok := kv.Key.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

type resolver struct {
	fset  *token.FileSet
	vars  map[string]ast.Expr
	funcs map[string]*ast.FuncDecl
}

func (r *resolver) errorf(n ast.Node, format string, args ...any) error {
	return fmt.Errorf("%s: %s", r.fset.Position(n.Pos()), fmt.Sprintf(format, args...))
}

func (r *resolver) str(e ast.Expr) (string, error) {
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		return strconv.Unquote(lit.Value)
	}
	return "", r.errorf(e, "not a string literal")
}

// flagList resolves an expression of type []cli.Flag.
func (r *resolver) flagList(e ast.Expr, depth int) ([]*Flag, error) {
	if depth > 8 {
		return nil, r.errorf(e, "flag list nested too deep")
	}
	switch e := e.(type) {
	case *ast.CompositeLit:
		var out []*Flag
		for _, el := range e.Elts {
			f, err := r.flag(el, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		return out, nil
	case *ast.Ident:
		if v, ok := r.vars[e.Name]; ok {
			return r.flagList(v, depth+1)
		}
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "append" && len(e.Args) > 0 {
			out, err := r.flagList(e.Args[0], depth+1)
			if err != nil {
				return nil, err
			}
			for i, a := range e.Args[1:] {
				if e.Ellipsis.IsValid() && i == len(e.Args)-2 {
					more, err := r.flagList(a, depth+1)
					if err != nil {
						return nil, err
					}
					out = append(out, more...)
					continue
				}
				f, err := r.flag(a, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, f)
			}
			return out, nil
		}
	}
	return nil, r.errorf(e, "cannot read this list of flags")
}

// flag resolves an expression of type cli.Flag.
func (r *resolver) flag(e ast.Expr, depth int) (*Flag, error) {
	if depth > 8 {
		return nil, r.errorf(e, "flag nested too deep")
	}
	switch e := e.(type) {
	case *ast.UnaryExpr:
		lit, ok := e.X.(*ast.CompositeLit)
		if !ok || e.Op != token.AND {
			break
		}
		sel, ok := lit.Type.(*ast.SelectorExpr)
		if !ok || !strings.HasSuffix(sel.Sel.Name, "Flag") || !isCLIType(sel, sel.Sel.Name, false) {
			break
		}
		f := &Flag{Bool: sel.Sel.Name == "BoolFlag"}
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			switch key(kv) {
			case "Name":
				s, err := r.str(kv.Value)
				if err != nil {
					return nil, err
				}
				f.Name = s
			case "Aliases":
				al, ok := kv.Value.(*ast.CompositeLit)
				if !ok {
					return nil, r.errorf(kv.Value, "Aliases is not a []string literal")
				}
				for _, a := range al.Elts {
					s, err := r.str(a)
					if err != nil {
						return nil, err
					}
					f.Aliases = append(f.Aliases, s)
				}
			}
		}
		if f.Name == "" {
			return nil, r.errorf(e, "flag without a Name")
		}
		return f, nil
	case *ast.Ident:
		if v, ok := r.vars[e.Name]; ok {
			return r.flag(v, depth+1)
		}
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok {
			if fn, ok := r.funcs[id.Name]; ok && fn.Body != nil {
				for _, s := range fn.Body.List {
					if ret, ok := s.(*ast.ReturnStmt); ok && len(ret.Results) == 1 {
						return r.flag(ret.Results[0], depth+1)
					}
				}
			}
		}
	}
	return nil, r.errorf(e, "cannot read this flag")
}

// Args is a tfcat command line parsed with a command's flags: the values by
// flag name (not alias), in order of appearance for repeated flags.
type Args struct {
	Command string
	Values  map[string][]string
}

// Get is the last value given for the flag, and whether it was given.
func (a Args) Get(name string) (string, bool) {
	v := a.Values[name]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// ParseArgs parses args (the container's args: command first) as urfave/cli
// parses them with Go's flag package: -f or --f, a value after '=' or in the
// next argument, a bool flag taking a value only after '='. A command that
// takes positional arguments is not expected here: any is an error.
func ParseArgs(cmds map[string]Command, args []string) (Args, error) {
	if len(args) == 0 {
		return Args{}, fmt.Errorf("no tfcat command in args")
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return Args{}, fmt.Errorf("%q is no tfcat command", args[0])
	}
	out := Args{Command: args[0], Values: map[string][]string{}}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return out, fmt.Errorf("tfcat %s: %q is not a flag (the command takes no arguments here)", out.Command, a)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, value, hasValue = name[:k], name[k+1:], true
		}
		f := cmd[name]
		if f == nil {
			return out, fmt.Errorf("tfcat %s has no flag --%s", out.Command, name)
		}
		if f.Bool {
			if !hasValue {
				value = "true"
			} else if _, err := strconv.ParseBool(value); err != nil {
				return out, fmt.Errorf("tfcat %s: --%s=%s is not a bool", out.Command, name, value)
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return out, fmt.Errorf("tfcat %s: --%s needs a value", out.Command, name)
			}
			i++
			value = args[i]
		}
		out.Values[f.Name] = append(out.Values[f.Name], value)
	}
	return out, nil
}
