"""`make bench` → `python -m bench [send|render|import|api|inbound|redirects|report|windows] [options]`. `send` (the
default) is the delivery benchmark; `api` measures the REST API and webhook delivery; `inbound` the bounce doors;
`redirects` tracked-link clicks under gunicorn; `report` the engagement report of a million-delivery issue;
`windows` materialising an issue with send windows."""

import importlib
import sys

COMMANDS = {
    "send": "bench.send",
    "render": "bench.render",
    "import": "bench.import_subscribers",
    "outcomes": "bench.outcomes",
    "api": "bench.api",
    "inbound": "bench.inbound",
    "redirects": "bench.redirects",
    "report": "bench.report",
    "windows": "bench.windows",
}


def main(argv: list[str]) -> int:
    name = argv[0] if argv and not argv[0].startswith("-") else "send"
    args = argv[1:] if argv and argv[0] == name else argv
    if name not in COMMANDS:
        print(f"unknown benchmark {name!r}; choose from: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name])
    except ModuleNotFoundError as exc:
        if exc.name != COMMANDS[name]:
            raise
        print(f"the {name!r} benchmark is not installed ({COMMANDS[name].replace('.', '/')}.py)", file=sys.stderr)
        return 2
    return module.main(args) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
