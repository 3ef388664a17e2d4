#!/usr/bin/env python3
"""Prints the performance targets as one table from the files of one
benches/targets.sh run:

    targets.py --bench-dir DIR --cached RESULTS.tsv --uncached RESULTS.tsv \\
               --memory MEMORY.txt [--markdown OUT.md]

--cached and --uncached are the shared harness's results.tsv (run-anchors.sh)
of the gateway with its verified-token cache and with token_cache_size = 0;
--memory is benches/memory.sh's output. Medians and sample selection are the
harness's own (report.py in --bench-dir: samples with errors are never used,
noisy ones only when a cell has no quiet sample). Only pinned samples count.
Exit status 1 when a figure is missing, 0 otherwise (met or not).
"""
import argparse
import sys

MODE = "pinned"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench-dir", required=True, help="the shared harness (report.py)")
    parser.add_argument("--cached")
    parser.add_argument("--uncached")
    parser.add_argument("--memory")
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args()
    sys.path.insert(0, args.bench_dir)
    import report  # the harness's medians and sample rules

    notes = []

    def cells(path, label):
        rows = report.load([path]) if path else []

        def cell(target, profile, column):
            cell_rows = [r for r in rows if r["mode"] == MODE and r["target"] == target and r["profile"] == profile]
            used, quiet = report.pick(cell_rows)
            if not used:
                if path:
                    notes.append(f"{label} {target} {profile}: no valid sample ({len(cell_rows)} taken)")
                return None
            if quiet < len(used) or len(used) < len(cell_rows):
                notes.append(f"{label} {target} {profile}: median of {len(used)} of {len(cell_rows)} samples, "
                             f"{quiet} quiet")
            return report.med(report.num(r[column]) for r in used)

        return cell

    cached = cells(args.cached, "cached run")
    uncached = cells(args.uncached, "token_cache_size=0 run")

    memory = {}
    if args.memory:
        with open(args.memory) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3 and parts[0] != "ratio":
                    memory[(parts[0], parts[1])] = report.num(parts[2])

    def mem(server, name):
        return memory.get((server, name))

    for server in ("mfagate", "nginx", "haproxy"):
        if mem(server, "connections_failed"):
            notes.append(f"memory {server}: {mem(server, 'connections_failed'):.0f} connections failed to open")
        if mem(server, "connections_left_open"):
            notes.append(f"memory {server}: {mem(server, 'connections_left_open'):.0f} connections still open "
                         "when the after-close figure was read")

    def added(target):
        p50, base = cached(target, "lat", "p50_ms"), cached("A-upstream", "lat", "p50_ms")
        return (p50 - base) * 1000 if p50 is not None and base is not None else None

    idle = int(mem("mfagate", "connections_open") or 0)
    lines = []

    def row(number, what, ours, ref_label, ref, unit, digits, bar, at_most=None, at_least=None, below=None):
        ratio = ours / ref if ours is not None and ref and ref > 0 else None
        if ratio is None:
            met = "n/a"
        elif at_most is not None:
            met = "met" if ratio <= at_most else "not met"
        elif at_least is not None:
            met = "met" if ratio >= at_least else "not met"
        elif below is not None:
            met = "met" if ratio < below else "not met"
        else:
            met = "(reference)"

        def fig(value):
            return "-" if value is None else f"{value:,.{digits}f}{unit}"

        lines.append([str(number), what, fig(ours), f"{ref_label} {fig(ref)}".strip(),
                      "-" if ratio is None else f"{ratio:.2f}×", bar, met])

    row(1, f"memory, {idle:,} idle TLS connections (RSS)", mem("mfagate", "rss_idle_mib"),
        "nginx", mem("nginx", "rss_idle_mib"), " MiB", 1, "≤ 0.55×", at_most=0.55)
    row(1, "memory after they close vs before they opened", mem("mfagate", "rss_after_close_mib"),
        "before", mem("mfagate", "rss_before_mib"), " MiB", 1, "≤ 1.10×", at_most=1.10)
    row(1, "memory, idle connections, vs HAProxy-JWT", mem("mfagate", "rss_idle_mib"),
        "HAProxy", mem("haproxy", "rss_idle_mib"), " MiB", 1, "-")
    row(2, "HTTP/1.1 TLS, one cached token: proxy CPU per request", cached("G-gateway", "load", "proxy_us_per_req"),
        "nginx", cached("B-nginx-tls", "load", "proxy_us_per_req"), " µs", 1, "≤ 1.00×", at_most=1.0)
    row(2, "HTTP/1.1 TLS, one cached token: req/s", cached("G-gateway", "load", "rps"),
        "HAProxy-JWT", cached("C-haproxy-tls", "load", "rps"), "", 0, "≥ 1.80×", at_least=1.8)
    row(3, "HTTP/2 (h2load): req/s", cached("G-gateway", "h2", "rps"),
        "nginx", cached("B-nginx-tls", "h2", "rps"), "", 0, "≥ 1.00×", at_least=1.0)
    row(4, "every token verified (token_cache_size = 0): req/s", uncached("G-gateway", "load", "rps"),
        "HAProxy-JWT", uncached("C-haproxy-tls", "load", "rps"), "", 0, "≥ 1.40×", at_least=1.4)
    row(5, "unloaded latency: p50 added over the upstream direct", added("G-gateway"),
        "nginx", added("B-nginx-tls"), " µs", 0, "≤ 1.00×", at_most=1.0)
    row(5, "unloaded latency: p99", cached("G-gateway", "lat", "p99_ms"),
        "bar", 1.0, " ms", 3, "< 1.00×", below=1.0)

    p99 = {t: cached(t, "lat", "p99_ms") for t in ("A-upstream", "B-nginx-tls", "C-haproxy-tls")}
    if any(v is not None for v in p99.values()):
        notes.append("unloaded p99 in the same run: " + ", ".join(
            f"{t} {'-' if v is None else f'{v:.3f} ms'}" for t, v in p99.items()))

    head = ["#", "target", "mfagate", "reference", "ratio", "bar", "met"]
    widths = [max(len(head[i]), *(len(r[i]) for r in lines)) for i in range(len(head))]

    def fmt(cols):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |"

    table = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in lines]
    met = sum(r[6] == "met" for r in lines)
    missing = sum(r[6] == "n/a" for r in lines)
    scored = sum(r[6] in ("met", "not met") for r in lines)
    table.append("")
    table.append(f"{met} of {scored + missing} targets met" + (f", {missing} not measured" if missing else "")
                 + f"; pinned, medians of the harness's samples (nginx memory: master + worker).")
    table.extend(f"- {n}" for n in dict.fromkeys(notes))
    text = "\n".join(table)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(text + "\n")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
