#!/usr/bin/env python3
"""Reads a systemd unit file the way systemd would for the keys the Hypertrain units use.

  unit_exec.py check UNIT...            required keys present (prints one line per problem)
  unit_exec.py argv UNIT [options]      ExecStart (or --key ExecStartPre) expanded to argv,
                                        printed NUL-separated

argv options:
  --instance I        value of %i (template units)
  --env-file F        read this EnvironmentFile instead of the unit's path
  --cred-dir D        value of %d; every LoadCredential=NAME:PATH is copied to D/NAME (mode 0600)
  --map FROM=TO       rewrite a path prefix in the arguments and in LoadCredential sources
                      (e.g. /etc/hypertrain=/tmp/x/etc, /usr/local/bin/hypertrain=/build/hypertrain)

Expansion follows systemd.service(5): specifiers (%i, %d, %%) first, then "${VAR}" is replaced
in place and a word that is exactly "$VAR" is replaced by the value split at whitespace.
Only what the Hypertrain units use is implemented; anything else is an error.
"""
import os
import re
import shlex
import shutil
import sys


def parse_unit(path):
    """Returns {section: [(key, value, lineno)]} with continuation lines joined."""
    sections, current, pending, start = {}, None, None, 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if pending is not None:
            pending += " " + line.strip()
        else:
            if not line.strip() or line.lstrip().startswith(("#", ";")):
                continue
            pending, start = line.strip(), n
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        text, pending = pending, None
        m = re.fullmatch(r"\[([^\]]+)\]", text)
        if m:
            current = m.group(1)
            sections.setdefault(current, [])
            continue
        if current is None or "=" not in text:
            raise SystemExit(f"{path}:{start}: not a section header or KEY=VALUE: {text!r}")
        key, value = text.split("=", 1)
        sections[current].append((key.strip(), value.strip(), start))
    return sections


def values(sections, section, key):
    return [v for k, v, _ in sections.get(section, []) if k == key]


def read_env_file(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if "=" not in line:
                raise SystemExit(f"{path}:{n}: not KEY=VALUE: {line!r}")
            k, v = line.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            env[k.strip()] = v
    return env


def specifiers(text, instance, cred_dir):
    def sub(m):
        c = m.group(1)
        if c == "%":
            return "%"
        if c == "i":
            if instance is None:
                raise SystemExit("%i used but no --instance given")
            return instance
        if c == "d":
            return cred_dir
        raise SystemExit(f"unsupported specifier %{c}")
    return re.sub(r"%(.)", sub, text)


def expand(command, env):
    words = shlex.split(command)
    # A leading prefix such as "-" or "+" or "!" is not used by these units.
    out = []
    for w in words:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            out.extend(env.get(m.group(1), "").split())
            continue
        def sub(m2):
            name = m2.group(1)
            if name not in env:
                raise SystemExit(f"${{{name}}} is not set in the environment file")
            return env[name]
        out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, w))
    return out


def remap(arg, maps):
    for src, dst in maps:
        if arg == src or arg.startswith(src + "/"):
            return dst + arg[len(src):]
        arg = arg.replace("=" + src + "/", "=" + dst + "/")
    return arg


REQUIRED = {
    # key: predicate on the list of values, description
    ("Service", "User"): (lambda v: v == ["hypertrain"], "User=hypertrain (dedicated user)"),
    ("Service", "EnvironmentFile"): (lambda v: "/etc/hypertrain/hypertrain.env" in v, "EnvironmentFile=/etc/hypertrain/hypertrain.env"),
    ("Service", "ExecStart"): (lambda v: len(v) == 1 and v[0].startswith("/"), "exactly one ExecStart= with an absolute path"),
    ("Service", "Restart"): (lambda v: v == ["on-failure"], "Restart=on-failure"),
    ("Service", "KillSignal"): (lambda v: v in (["SIGTERM"], ["TERM"], ["15"]), "KillSignal=SIGTERM"),
    ("Service", "SuccessExitStatus"): (lambda v: any("143" in x.split() for x in v) and any("130" in x.split() for x in v), "SuccessExitStatus includes 143 and 130 (exit after SIGTERM, SIGINT)"),
    ("Service", "TimeoutStopSec"): (lambda v: len(v) == 1, "TimeoutStopSec="),
    ("Service", "LoadCredential"): (lambda v: len(v) >= 1, "LoadCredential= for the secret key"),
    ("Install", "WantedBy"): (lambda v: len(v) >= 1, "WantedBy= in [Install]"),
    ("Unit", "Description"): (lambda v: len(v) == 1, "Description="),
}


def seconds(text):
    total, rest = 0.0, text.replace(" ", "")
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)([a-z]*)", rest):
        if unit not in units:
            raise ValueError(unit)
        total += float(num) * units[unit]
    return total


def check(paths):
    problems = 0
    known_sections = {"Unit", "Service", "Install"}
    for path in paths:
        sections = parse_unit(path)
        name = os.path.basename(path)
        for s in sections:
            if s not in known_sections:
                print(f"{name}: unexpected section [{s}]"); problems += 1
        for (sec, key), (pred, desc) in REQUIRED.items():
            if not pred(values(sections, sec, key)):
                print(f"{name}: missing or wrong: {desc}"); problems += 1
        stop = values(sections, "Service", "TimeoutStopSec")
        if stop:
            try:
                limit = 120 if "coordinator" in name else 10
                if seconds(stop[0]) < limit:
                    print(f"{name}: TimeoutStopSec={stop[0]} is shorter than {limit} s"); problems += 1
            except ValueError:
                print(f"{name}: TimeoutStopSec={stop[0]} is not a time span"); problems += 1
        if name.endswith("@.service") and not any("%i" in v for _, v, _ in sections.get("Service", [])):
            print(f"{name}: template unit does not use %i"); problems += 1
    return problems


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    mode = sys.argv[1]
    if mode == "check":
        sys.exit(1 if check(sys.argv[2:]) else 0)
    if mode != "argv":
        raise SystemExit(__doc__)
    unit, args = sys.argv[2], sys.argv[3:]
    instance, env_file, cred_dir, maps, key = None, None, None, [], "ExecStart"
    while args:
        a = args.pop(0)
        if a == "--instance": instance = args.pop(0)
        elif a == "--env-file": env_file = args.pop(0)
        elif a == "--cred-dir": cred_dir = args.pop(0)
        elif a == "--key": key = args.pop(0)
        elif a == "--map":
            src, dst = args.pop(0).split("=", 1); maps.append((src, dst))
        else: raise SystemExit(f"unknown option {a}")
    sections = parse_unit(unit)
    env_files = values(sections, "Service", "EnvironmentFile")
    env = read_env_file(env_file or env_files[0])
    if cred_dir:
        os.makedirs(cred_dir, mode=0o700, exist_ok=True)
        for cred in values(sections, "Service", "LoadCredential"):
            name, src = specifiers(cred, instance, cred_dir).split(":", 1)
            dst = os.path.join(cred_dir, name)
            shutil.copyfile(remap(src, maps), dst)
            os.chmod(dst, 0o600)
    commands = values(sections, "Service", key)
    if len(commands) != 1:
        raise SystemExit(f"{unit}: expected one {key}=, found {len(commands)}")
    argv = [remap(a, maps) for a in expand(specifiers(commands[0], instance, cred_dir or "/run/credentials/unit"), env)]
    sys.stdout.write("\0".join(argv))


if __name__ == "__main__":
    main()
