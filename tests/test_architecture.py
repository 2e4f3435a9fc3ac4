"""The import contract, read from the source (no import needed): the layers stay layers.

- a model never imports a service, the delivery core, a dispatcher, a task, a view or an admin module;
- a service (newsletter/services, subscribers/services, newsletter/delivery) never imports a task, a view or an
  admin module;
- the subscribers app reaches the newsletter side only through `newsletter.delivery`'s public surface (its
  `__all__`), `newsletter.models` and the settings (`newsletter.conf`);
- every other app (api, automations) may use the newsletter's services, but the delivery core only through
  its `__all__`: the ledger's writers stay the delivery package's own;
- only the dispatch modules enqueue tasks (`delay`, `apply_async`, `send_task`, `delay_on_commit`);
- every import sits at the top of its module (apps.py's ready() excepted: Django's place to connect receivers).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from newsletter.conf import declared

ROOT = Path(__file__).resolve().parents[1]
APPS = ("newsletter", "subscribers", "api", "automations", "engagement")
ADAPTERS = ("tasks", "views", "admin", "admin_sending", "admin_import", "webhooks", "feeds", "devmail")
ENQUEUE_CALLS = {"delay", "apply_async", "send_task", "delay_on_commit", "apply_async_on_commit"}
SUBSCRIBERS_MAY_IMPORT = {"newsletter.models", "newsletter.conf", "newsletter.delivery"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted
    tree: ast.Module

    @property
    def parts(self) -> list[str]:
        return self.name.split(".")


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def app_modules() -> list[Module]:
    modules = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            modules.append(Module(module_name(path), ast.parse(path.read_text(), str(path))))
    return modules


def imported(module: Module) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for every import anywhere in the module."""
    found = []
    package = module.parts if module.tree and _is_package(module) else module.parts[:-1]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [alias.name for alias in node.names]
            found.append((node.lineno, target, names))
            # `from package import submodule` imports the submodule too.
            found += [(node.lineno, f"{target}.{name}", []) for name in names]
    return found


def _is_package(module: Module) -> bool:
    return (ROOT / Path(*module.parts) / "__init__.py").exists()


def kind(name: str) -> str:
    parts = name.split(".")
    if parts[0] not in APPS:
        return "external"
    if parts[-1] in ("models", "querysets"):
        return "model"
    if parts[-1] in ADAPTERS:
        return "adapter"
    if parts[-1] == "dispatch":
        return "dispatch"
    if len(parts) > 1 and parts[1] in ("services", "delivery"):
        return "service"
    return "other"


def delivery_public_names() -> set[str]:
    tree = ast.parse((ROOT / "newsletter" / "delivery" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("newsletter/delivery/__init__.py has no __all__")


def violations(modules: list[Module]) -> list[str]:
    public = delivery_public_names()
    problems = []
    for module in modules:
        own = kind(module.name)
        for line, target, names in imported(module):
            where = f"{module.name}:{line} imports {target}"
            target_kind = kind(target)
            if own == "model" and target_kind in ("service", "dispatch", "adapter"):
                problems.append(f"{where}: a model imports a {target_kind}")
            if own == "service" and target_kind == "adapter":
                problems.append(f"{where}: a service imports a task, view or admin module")
            if module.parts[0] == "subscribers" and target.split(".")[0] == "newsletter":
                allowed = any(target == ok or target.startswith(ok + ".") for ok in SUBSCRIBERS_MAY_IMPORT)
                inside_delivery = target.startswith("newsletter.delivery.")
                if target == "newsletter" and set(names) <= {"delivery", "models", "conf"}:
                    continue
                if not allowed or inside_delivery:
                    problems.append(f"{where}: the subscribers app reaches a newsletter internal")
                elif target == "newsletter.delivery" and not set(names) <= public:
                    problems.append(f"{where}: {sorted(set(names) - public)} not in newsletter.delivery.__all__")
            elif module.parts[0] != "newsletter" and target.startswith("newsletter.delivery."):
                problems.append(f"{where}: only newsletter.delivery's public surface may be used outside newsletter")
            elif module.parts[0] != "newsletter" and target == "newsletter.delivery" and not set(names) <= public:
                problems.append(f"{where}: {sorted(set(names) - public)} not in newsletter.delivery.__all__")
        if module.parts[0] != "newsletter":
            problems += _delivery_attributes(module, public)
        if module.parts[-1] != "dispatch":
            for node in ast.walk(module.tree):
                call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                if call and node.func.attr in ENQUEUE_CALLS:
                    problems.append(f"{module.name}:{node.lineno} enqueues a task outside a dispatch module")
        if module.parts[-1] != "apps":
            for node in ast.walk(module.tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    for inner in ast.walk(node):
                        if isinstance(inner, ast.Import | ast.ImportFrom):
                            problems.append(f"{module.name}:{inner.lineno} imports inside {node.name}()")
    return problems


def _delivery_attributes(module: Module, public: set[str]) -> list[str]:
    """`from newsletter import delivery` then `delivery.<name>`: the name must be public."""
    problems = []
    if not any(target == "newsletter" and "delivery" in names for _, target, names in imported(module)):
        return problems  # `delivery` here is some other name (a Delivery row, say)
    for node in ast.walk(module.tree):
        named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "delivery"
        if named and node.attr not in public:
            problems.append(f"{module.name}:{node.lineno} uses delivery.{node.attr}, not in __all__")
    return problems


def test_the_apps_keep_the_import_contract():
    assert violations(app_modules()) == []


def parsed(name: str, source: str) -> Module:
    return Module(name, ast.parse(source))


@pytest.mark.parametrize(
    ("name", "source", "complaint"),
    [
        ("newsletter.models", "from newsletter.services import sending\n", "a model imports a service"),
        ("subscribers.models", "from newsletter import dispatch\n", "a model imports a dispatch"),
        ("newsletter.services.sending", "from newsletter.tasks import send_batch_task\n", "a service imports"),
        ("newsletter.delivery.batch", "from newsletter import admin\n", "a service imports"),
        ("subscribers.services.bounces", "from newsletter.services.sending import issue_pause\n", "internal"),
        ("subscribers.services.bounces", "from newsletter.delivery.ledger import deliveries_withdraw\n", "internal"),
        ("subscribers.services.bounces", "from newsletter.delivery import ledger\n", "not in newsletter.delivery"),
        ("subscribers.services.bounces", "from newsletter import delivery\ndelivery.ledger\n", "not in __all__"),
        ("subscribers.services.signup", "def f(task):\n    task.delay(1)\n", "enqueues a task"),
        ("api.routers.issues", "from newsletter.delivery.ledger import deliveries_withdraw\n", "public surface"),
        ("automations.services.digests", "from newsletter.delivery import ledger\n", "not in newsletter.delivery"),
        ("api.services.reports", "def f():\n    import json\n", "imports inside f()"),
        ("newsletter.services.sending", "def f():\n    import json\n", "imports inside f()"),
    ],
)
def test_the_contract_test_catches_each_kind_of_breach(name, source, complaint):
    found = violations([parsed(name, source)])
    assert any(complaint in problem for problem in found), found


def test_the_allowed_crossings_pass():
    allowed = (
        "from newsletter import delivery\nfrom newsletter.models import Newsletter\n"
        "from newsletter.conf import app_settings\ndelivery.subscriber_withdraw(1)\n"
    )
    assert violations([parsed("subscribers.services.unsubscribe", allowed)]) == []


def environment_variables_read() -> set[str]:
    """Every variable the settings read: env.<kind>("NAME", ...) in config/settings, and every declared setting."""
    names = set(declared())
    for path in (ROOT / "config" / "settings").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "env"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names


def readme_configuration_table() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            names |= {part for part in first_column.split("`")[1::2] if part.isupper()}
    return names


def test_the_readme_configuration_table_lists_every_variable_read_and_no_other():
    read, documented = environment_variables_read(), readme_configuration_table()
    assert read - documented == set(), "read but not in the README's configuration table"
    assert documented - read == set(), "in the README's configuration table but read nowhere"
