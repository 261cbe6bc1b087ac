"""Examples that cannot rot: every shell block in README.md and docs/ carries a marker, the runnable ones run,
and every relative link and anchor resolves. The convention is docs/development/docs-tests.md:

    ```bash run                  runs as written
    ```bash run-with-demo        names a GPU model: runs with psysim/demo in its place, at the smallest size
    ```bash skip: <reason>       never run (a GPU, a server that runs until Ctrl-C, minutes of CPU, ...)

Runnable blocks run in reading order (README.md, then the site's navigation, then pages outside it) in one
temporary working directory, as a reader would: a later block may read an earlier block's logs. The repository's
tasks/, scorers/, datasets/, configs/, psysim/ and docs/ are linked into it, so paths in the docs resolve.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from markdown.extensions.toc import slugify

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SHELL = {"bash", "sh", "shell", "console", "zsh"}
MARKERS = ("run", "run-with-demo", "skip")
DEMO_MODEL = "psysim/demo"
BLOCK_TIMEOUT = 240  # seconds, one block (the whole test's budget is under 3 minutes; see docs-tests.md)
# commands a runnable block may not hold: they run until Ctrl-C, need a GPU or the network, or take many minutes
NEVER_RUN = (r"run_offline\.sh", r"\binspect view\b", r"\bserve\b", r"psysim-serve", r"\bpip install\b",
             r"\bpsysim-offline\b", r"\bbenchmarks/", r"\bsbatch\b", r"\bsubmit\.sh\b", r"\bpytest\b")
LINKED = ("tasks", "scorers", "datasets", "configs", "psysim", "docs", "tests")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\((?P<image>[^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def marker(self) -> str:
        """The marker after the language: run, run-with-demo, skip (with its reason), or '' when there is none."""
        rest = self.info[len(self.language):].strip()
        return rest.split(":")[0].strip() if rest.startswith("skip") else rest

    @property
    def reason(self) -> str:
        rest = self.info[len(self.language):].strip()
        return rest.partition(":")[2].strip() if rest.startswith("skip") else ""


def doc_files() -> list[Path]:
    """README.md, the site's pages in navigation order, then every other page (outside the nav; not the drafts
    in docs/incoming/, which mkdocs.yml excludes until they are moved into a page)."""
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        return []

    ordered = [DOCS / p for p in pages(config["nav"])]
    rest = sorted(p for p in DOCS.rglob("*.md") if p not in ordered and "incoming" not in p.relative_to(DOCS).parts)
    return [REPO / "README.md", *ordered, *rest]


def blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown file (fences inside fences are body)."""
    found, lines, i = [], path.read_text(encoding="utf-8").split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        assert j < len(lines), f"{path.relative_to(REPO)}:{i + 1}: a code fence that is never closed"
        body = "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in lines[i + 1:j])
        found.append(Block(path, i + 1, m["info"].strip(), body))
        i = j + 1
    return found


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in blocks(path)]


def unmarked(found: list[Block]) -> list[str]:
    """Fences without a language, and shell fences without a valid marker (or a skip without its reason)."""
    problems = []
    for b in found:
        if not b.language:
            problems.append(f"{b.where}: a code fence without a language (use ```text for output)")
        elif b.language in SHELL and (b.marker not in MARKERS or (b.marker == "skip" and not b.reason)):
            problems.append(f"{b.where}: shell block without a marker: ```{b.info}``` "
                            "(```bash run, ```bash run-with-demo or ```bash skip: <reason>)")
    return problems


def test_every_shell_block_is_marked() -> None:
    found = all_blocks()
    assert len(found) > 20  # the parser sees the docs' blocks
    assert unmarked(found) == []


def test_an_unmarked_block_is_reported(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# P\n\n```bash\nls\n```\n\n```\nout\n```\n\n```bash skip:\nx\n```\n\n```bash run\nls\n```\n")
    found = [Block(REPO / "docs" / "page.md", b.line, b.info, b.body) for b in blocks(page)]
    problems = unmarked(found)
    assert [p.split(":")[1] for p in problems] == ["3", "7", "11"]  # the bare bash, the bare fence, a skip without reason


def demo_command(command: str) -> str:
    """A run-with-demo command: every vllm/ model replaced by psysim/demo, at the smallest size."""
    command = re.sub(r"vllm/\S+", DEMO_MODEL, command)
    words = shlex.split(command, comments=True)
    if words[:2] == ["inspect", "eval"]:
        small = " --limit 1 --epochs 1"
        if "iterative_feedback" in words[2]:
            small += " -T sessions=1 -T turns=1"
        return command.split(" #")[0].rstrip() + ("" if "--model" in words else f" --model {DEMO_MODEL}") + small
    if words[:1] == ["psysim-paper"]:
        small = " --limit 1 --epochs 1 --sessions 1 --turns 1"
        return command.split(" #")[0].rstrip() + ("" if "--model" in words else f" --model {DEMO_MODEL}") + small
    return command


def script(block: Block) -> str:
    """The block as a bash script: continuation lines joined, run-with-demo commands rewritten."""
    commands = block.body.replace("\\\n", " ").split("\n")
    if block.marker == "run-with-demo":
        commands = [demo_command(c) if c.strip() and not c.lstrip().startswith("#") else c for c in commands]
    return "set -euo pipefail\n" + "\n".join(commands) + "\n"


def test_demo_rewrite() -> None:
    assert demo_command("inspect eval tasks/iterative_feedback.py --model vllm/meta-llama/Llama-3.1-70B-Instruct \\"
                        .rstrip("\\") + " -T questionnaires=srs,wai_sr") == (
        "inspect eval tasks/iterative_feedback.py --model psysim/demo  -T questionnaires=srs,wai_sr"
        " --limit 1 --epochs 1 -T sessions=1 -T turns=1")
    assert demo_command("psysim-paper --therapist-styles standard poor --log-dir logs/paper   # 6 tasks") == (
        "psysim-paper --therapist-styles standard poor --log-dir logs/paper --model psysim/demo"
        " --limit 1 --epochs 1 --sessions 1 --turns 1")
    assert demo_command("psysim-report logs/ -o reports/") == "psysim-report logs/ -o reports/"


def runnable(found: list[Block]) -> list[Block]:
    seen, out = set(), []
    for b in found:
        if b.language in SHELL and b.marker in ("run", "run-with-demo") and (b.marker, b.body) not in seen:
            seen.add((b.marker, b.body))  # the same commands on two pages (README and a page) run once
            out.append(b)
    return out


def test_runnable_blocks_never_run_forbidden_commands() -> None:
    bad = [f"{b.where}: {pattern}" for b in runnable(all_blocks()) for pattern in NEVER_RUN
           if re.search(pattern, b.body)]
    assert bad == [], "these commands cannot run in the docs test: mark their block ```bash skip: <reason>"


def test_runnable_blocks_run(tmp_path: Path) -> None:
    """Every run / run-with-demo block, in reading order, in one working directory; each must exit 0."""
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(REPO / name)
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "OPENAI_", "HF_", "INSPECT_"))}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "INSPECT_CACHE_DIR": str(tmp_path / "cache"),
            "PSYSIM_REPORT_PNG": "0", "NO_COLOR": "1", "COLUMNS": "200"}
    failures, timings, start = [], [], time.monotonic()
    for block in runnable(all_blocks()):
        began = time.monotonic()
        try:
            result = subprocess.run(["bash", "-c", script(block)], cwd=work, env=env, capture_output=True, text=True,
                                    timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL)
            code, out = result.returncode, (result.stdout[-2000:] + result.stderr[-3000:])
        except subprocess.TimeoutExpired:
            code, out = "timeout", f"over {BLOCK_TIMEOUT} s"
        timings.append(f"{block.where} {time.monotonic() - began:.1f} s")
        if code != 0:
            failures.append(f"--- {block.where} (```{block.info}) exited {code}:\n{script(block)}{out}")
    summary = f"{len(timings)} blocks in {time.monotonic() - start:.0f} s: " + "; ".join(timings)
    print(summary)
    assert not failures, "\n".join(failures) + "\n" + summary


# ---- links -------------------------------------------------------------------------------------------------------

def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown page: its headings, slugged as MkDocs' toc does, and explicit {#id} attributes."""
    text, found, counts = path.read_text(encoding="utf-8"), set(), {}
    in_fence = False
    for line in text.split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            title = re.sub(r"\{#([\w-]+)\}\s*$", "", m[1])
            plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
            slug = slugify(plain, "-")
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}_{n}")
        found.update(re.findall(r"\{[^}]*#([\w-]+)[^}]*\}", line))
    return found


def rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def broken_links(path: Path) -> list[str]:
    text = re.sub(r"(?ms)^[ \t]*```.*?^[ \t]*```[ \t]*$", "", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    problems = []
    for m in LINK.finditer(text):
        target = m["target"] or m["image"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http(s):, mailto: ... (no external checks: offline)
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{rel(path)}: {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{rel(path)}: {target}: no such anchor in {rel(dest)}")
    return problems


def test_relative_links_and_anchors_resolve() -> None:
    problems = [p for path in doc_files() for p in broken_links(path)]
    assert problems == []


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "index.md").write_text("# Index\n\n## The paper\n")
    page = tmp_path / "probe.md"
    page.write_text("# Probe\n\n## A heading, with `code`\n\n[ok](#a-heading-with-code) [ok](index.md#the-paper) "
                    "[bad](index.md#no-such-anchor) [bad](no-such-page.md) [x](https://example.org/) `[no](x.md)`\n"
                    "![img](missing.png)\n")
    assert [p.split(": ")[1] for p in broken_links(page)] == ["index.md#no-such-anchor", "no-such-page.md", "missing.png"]


@pytest.mark.parametrize("title, slug", [("Task parameters (`-T name=value`)", "task-parameters-t-namevalue"),
                                         ("No GPU? Run it offline", "no-gpu-run-it-offline")])
def test_anchor_slugs_match_mkdocs(title: str, slug: str, tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(f"# T\n\n## {title}\n")
    assert slug in anchors(page)
