"""`pai-sweep warm [--stop]`: the warm worker servers kept between commands (launcher.keep_warm), or stop them."""

from __future__ import annotations

import time


def warm_command_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "warm",
        help="list the warm worker servers kept between commands (launcher.keep_warm), or stop them",
        description=("A command typed at a terminal leaves a warm worker server for the next one (launcher.keep_warm). "
                     "List this user's: pid, age, forks, running trials, when it exits; --stop asks each to exit once its "
                     "running trials end."),
    )
    p.add_argument("--stop", action="store_true", help="stop every kept warm server of this user")
    p.set_defaults(func=warm_command)


def warm_command(args) -> int:
    from pai_sweep.errors import ConfigError
    from pai_sweep.launchers.warm_client import KeptServerError, socket_dir, status_all, stop_all

    try:
        folder = socket_dir()
        if args.stop:
            print(f"stopped {stop_all()} kept warm server(s); each exits once its running trials end")
            return 0
        servers = status_all()
    except KeptServerError as exc:
        raise ConfigError(str(exc)) from None
    if not servers:
        print(f"no kept warm server runs (sockets: {folder})")
        return 0
    for s in servers:
        exits = "when its running trials end, then after its idle time" if s["exits_in_s"] is None else f"in {s['exits_in_s']} s"
        print(f"pid {s['pid']}: up {time.time() - s['started']:.0f} s, {s['forks']} fork(s), {s['running']} running, "
              f"exits {exits} (idle time {s['idle_s']} s){', torchvision' if s['vision'] else ''}; {s['socket']}")
    return 0
