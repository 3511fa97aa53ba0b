"""Finds, by reading the source (ast), every use of a private Keras / TensorFlow name.

A use is one of:

* an import of, or an attribute chain through, a private module or name of the
  frameworks: `keras._x`, `tf.a._b`, `keras.src` (Keras's internals behind its
  public API), `tensorflow.python`;
* `obj._name` on any other object, unless `_name` is our own: defined by our
  code as a function, a class, a class or module attribute, or an attribute
  our code assigns to `self` or `cls` — except in a class that subclasses a
  Keras / TensorFlow class, where a name the framework's classes already use
  (it occurs in their source) is theirs, not ours;
* a method of such a subclass that overrides one of the framework's private
  methods (`def _maybe_symbolic_build`).

`private_uses(paths)` returns [(path, line, name)].
"""

import ast
import importlib
import inspect
import re

FRAMEWORKS = ("keras", "tensorflow", "tf_keras")
PRIVATE_PACKAGES = ("keras.src", "tensorflow.python", "tf_keras.src")


def is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_path(path):
    return any(is_private(part) for part in path.split(".")) or any(
        path == p or path.startswith(p + ".") for p in PRIVATE_PACKAGES)


def dotted(node):
    """['a', 'b', 'c'] for the expression a.b.c, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def framework_aliases(tree):
    """{local name: the dotted framework path it is bound to} of a module's imports."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in FRAMEWORKS:
                    aliases[alias.asname or root] = alias.name if alias.asname else root
        elif isinstance(node, ast.ImportFrom) and node.module \
                and node.module.split(".")[0] in FRAMEWORKS:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def resolve(path):
    """The framework object at a dotted path (its longest importable module, then
    attributes), or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj
    return None


def framework_names(cls):
    """Every private identifier in the source of the framework classes `cls` derives from."""
    names = set()
    for base in inspect.getmro(cls):
        if base.__module__.split(".")[0] in FRAMEWORKS:
            try:
                names.update(re.findall(r"\b_\w+", inspect.getsource(base)))
            except (OSError, TypeError):
                pass
    return names


class Module:
    def __init__(self, path):
        self.path = path
        with open(path, encoding="utf-8") as f:
            self.tree = ast.parse(f.read(), path)
        self.aliases = framework_aliases(self.tree)
        self.classes = [n for n in ast.walk(self.tree) if isinstance(n, ast.ClassDef)]

    def framework_path(self, node):
        parts = dotted(node)
        if parts and parts[0] in self.aliases:
            return ".".join([self.aliases[parts[0]]] + parts[1:])
        return None


class Project:
    def __init__(self, paths):
        self.modules = [Module(p) for p in paths]
        self.our_classes = {}  # name → (module, ClassDef)
        for module in self.modules:
            for node in module.classes:
                self.our_classes[node.name] = (module, node)
        self.bases = {}

    def framework_base(self, module, node, seen=()):
        """The framework class a class of ours derives from, or None."""
        for base in node.bases:
            path = module.framework_path(base)
            if path is not None:
                found = resolve(path)
                if inspect.isclass(found):
                    return found
            parts = dotted(base)
            if parts and parts[-1] in self.our_classes and parts[-1] not in seen:
                found = self.framework_base(*self.our_classes[parts[-1]], seen + (node.name,))
                if found is not None:
                    return found
        return None

    def theirs(self, module, node):
        """The framework's private names, for a class of ours (empty if not a subclass)."""
        key = (module.path, node.name, node.lineno)
        if key not in self.bases:
            base = self.framework_base(module, node)
            self.bases[key] = framework_names(base) if base is not None else set()
        return self.bases[key]

    def own_names(self):
        """Private names our code defines (see the module docstring)."""
        own = set()
        for module in self.modules:
            self._collect(module, module.tree, set(), own)
        return own

    def _collect(self, module, node, theirs, own):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                own.add(child.name)
                self._collect(module, child, self.theirs(module, child), own)
                continue
            names = []
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [child.name]
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                names = [child.id]
            elif isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Store) \
                    and isinstance(child.value, ast.Name) and child.value.id in ("self", "cls"):
                names = [child.attr]
            own.update(n for n in names if is_private(n) and n not in theirs)
            self._collect(module, child, theirs, own)

    def uses(self):
        own = self.own_names()
        found = []
        for module in self.modules:
            for node in ast.walk(module.tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                             else [node.module or ""])
                    found += [(module.path, node.lineno, n) for n in names
                              if n.split(".")[0] in FRAMEWORKS and private_path(n)]
                elif isinstance(node, ast.Attribute):
                    path = module.framework_path(node)
                    if path is not None:
                        if private_path(path) and not private_path(path.rsplit(".", 1)[0]):
                            found.append((module.path, node.lineno, path))
                    elif is_private(node.attr) and node.attr not in own:
                        found.append((module.path, node.lineno, node.attr))
            for cls in module.classes:
                theirs = self.theirs(module, cls)
                found += [(module.path, n.lineno, n.name) for n in cls.body
                          if isinstance(n, ast.FunctionDef) and is_private(n.name)
                          and n.name in theirs]
        return sorted(set(found))


def private_uses(paths):
    """[(path, line, name)] of every private Keras / TensorFlow use in the files."""
    return Project(paths).uses()
