"""The check that this project's packages come from one installation, run when each is imported.

The project ships as several distributions (``runcrate-integrations``, ``langchain-runcrate``,
``llama-index-llms-runcrate``, ...), each holding some of the import packages. A file of another
installation can shadow one of ours: an old ``runcrate-integrations`` 0.1 wheel (which held every
package) beside the split ones, a wheel over a source checkout, one package on two ``sys.path``
entries. Python would run a mix of versions without a word and fail later, somewhere else.

How a package knows where it comes from: ``dists/build.py`` writes into each package of a wheel a
``_distribution.py``, a copy of this module with the distribution's name and version appended.
The copy is what the package's ``__init__`` calls, so the check works even against a core that
predates it (the 0.1 core has no such module). A source checkout has no stamps and uses this
module. A package belongs with the core when both carry the same version, or both are unstamped
folders of one checkout: one small import per package. Only to explain a mismatch are the
installed distributions read (``importlib.metadata`` scans them all, tens of milliseconds).

Standard library only: the wheels' copies must import with any core and any dependencies.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import sys

#: The stamp module of a wheel's package: this module plus DISTRIBUTION, VERSION and RELEASE.
STAMP = "_distribution"
CORE = "runcrate_integrations"
CORE_DISTRIBUTION = "runcrate-integrations"


class InstallationError(ImportError):
    """Two of this project's packages come from installations that do not belong together."""


class Origin:
    """Where one package was imported from: its folder, and its wheel's stamp if any.

    A plain class: every package imports its own copy of this module, and a dataclass costs
    a few hundred microseconds to create.
    """

    __slots__ = ("distribution", "folder", "package", "release", "version")

    def __init__(
        self,
        package: str,
        folder: str | None,
        distribution: str | None = None,
        version: str | None = None,
        release: tuple[str, ...] = (),
    ) -> None:
        self.package = package
        self.folder = folder
        self.distribution = distribution  # None: no stamp (a source checkout, or a 0.1 wheel)
        self.version = version
        self.release = release  # every distribution of the stamp's release

    def __repr__(self) -> str:
        return f"Origin({self.package!r}, {self.folder!r}, {self.distribution!r}, {self.version!r})"

    @property
    def root(self) -> str | None:
        """The ``sys.path`` entry the package was found in."""
        if self.folder is None:
            return None
        root = self.folder
        for _ in range(self.package.count(".") + 1):
            root = os.path.dirname(root)
        return root


def origin(package: str) -> Origin:
    """The origin of ``package`` (imported already, or now)."""
    module = sys.modules.get(package) or importlib.import_module(package)
    file = getattr(module, "__file__", None)
    folder = os.path.dirname(os.path.abspath(file)) if file else None
    try:
        stamp = importlib.import_module(f"{package}.{STAMP}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.{STAMP}":
            raise
        return Origin(package, folder)
    distribution = getattr(stamp, "DISTRIBUTION", None)
    version = getattr(stamp, "VERSION", None)
    return Origin(package, folder, distribution, version, tuple(getattr(stamp, "RELEASE", ())))


@functools.cache
def core_origin() -> Origin:
    """The core's origin, read once per process: every other package is compared with it."""
    return origin(CORE)


def belong_together(a: Origin, b: Origin) -> bool:
    """Two wheels of one release, or two folders of one checkout."""
    if a.version is not None or b.version is not None:
        return a.version == b.version
    if a.root == b.root:
        return True
    return (
        a.root is not None
        and b.root is not None
        and (os.path.realpath(a.root) == os.path.realpath(b.root))
    )


def check_installation(package: str) -> None:
    """Raise :class:`InstallationError` if ``package`` and the core come from installations
    that do not belong together; the message names both and the command that fixes it."""
    mine = origin(package)
    core = core_origin()
    if not belong_together(mine, core):
        raise InstallationError(explain(mine, core), name=package)


# ---------------------------------------------------------------------- the error path


#: One installed distribution: (name, version), as ``importlib.metadata`` reports it.
Installed = tuple[str, str]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def owners(o: Origin) -> list[Installed]:
    """The installed distributions whose RECORD lists this package's ``__init__.py`` there."""
    from importlib.metadata import distributions

    if o.folder is None:
        return []
    target = os.path.realpath(os.path.join(o.folder, "__init__.py"))
    record_path = o.package.replace(".", "/") + "/__init__.py"
    found: set[Installed] = set()
    for dist in distributions():
        for file in dist.files or ():
            if str(file) == record_path and os.path.realpath(str(dist.locate_file(file))) == target:
                found.add((dist.metadata["Name"], dist.version))
                break
    return sorted(found)


def installed(names: set[str]) -> list[Installed]:
    """Those of ``names`` (distribution names) that are installed."""
    from importlib.metadata import distributions

    wanted = {canonical(n) for n in names}
    found = {
        (d.metadata["Name"], d.version)
        for d in distributions()
        if canonical(d.metadata["Name"] or "") in wanted
    }
    return sorted(found)


def editable_install(root: str | None) -> Installed | None:
    """The distribution installed in editable mode from ``root``, if any."""
    from importlib.metadata import distributions

    if root is None:
        return None
    for dist in distributions():
        raw = dist.read_text("direct_url.json")
        if not raw:
            continue
        try:
            info = json.loads(raw)
        except ValueError:
            continue
        url = str(info.get("url", ""))
        editable = info.get("dir_info", {}).get("editable") and url.startswith("file://")
        if editable and os.path.realpath(url.removeprefix("file://")) == os.path.realpath(root):
            return (dist.metadata["Name"], dist.version)
    return None


def describe(o: Origin, claimed_by: list[Installed]) -> str:
    """Which distribution (or checkout) a package comes from, and where."""
    where = f"in {o.root}" if o.root else "location unknown"
    if o.distribution is not None:
        others = [
            f"{name} {version}"
            for name, version in claimed_by
            if (canonical(name), version) != (canonical(o.distribution), o.version)
        ]
        also = f" (its files are also claimed by {', '.join(others)})" if others else ""
        return f"{o.distribution} {o.version}{also}, {where}"
    if claimed_by:
        names = ", ".join(f"{name} {version}" for name, version in claimed_by)
        return f"{names} (a wheel that predates this check), {where}"
    editable = editable_install(o.root)
    if editable is not None:
        return f"a source checkout (editable install of {editable[0]}), {where}"
    return f"a source checkout, {where}"


def fix(mine: Origin, core: Origin, mine_by: list[Installed], core_by: list[Installed]) -> str:
    """The shell command that leaves one installation of every package."""
    pip = f"{sys.executable} -m pip"
    sides = ((mine, mine_by), (core, core_by))
    stamped = {canonical(o.distribution) for o, _ in sides if o.distribution is not None}
    claimed = {canonical(name) for _, by in sides for name, _version in by}
    checkouts = [o for o, by in sides if o.distribution is None and not by]
    if len(checkouts) == 1:
        # A wheel shadows (or is shadowed by) a checkout: the checkout is what one develops on.
        return f"{pip} uninstall -y {' '.join(sorted(stamped | claimed))}"
    if checkouts:
        return f"keep one of the two checkouts on sys.path ({mine.root} or {core.root})"
    # Every distribution of the release that is installed goes out and comes back at one
    # version: uninstalling a stale wheel deletes the files its RECORD shares with another.
    release = {canonical(n) for n in (*(mine.release or core.release), CORE_DISTRIBUTION)}
    release |= stamped
    present = {canonical(name) for name, _version in installed(release)} | claimed
    back = sorted((present & release) | stamped | {CORE_DISTRIBUTION})
    version = mine.version or core.version
    pins = " ".join(f'"{name}=={version}"' if version else f'"{name}"' for name in back)
    return f"{pip} uninstall -y {' '.join(sorted(present))} && {pip} install {pins}"


def explain(mine: Origin, core: Origin) -> str:
    """What is mixed up, and the command that fixes it."""
    mine_by, core_by = owners(mine), owners(core)
    width = max(len(mine.package), len(core.package))
    return (
        f"{mine.package} and {core.package} come from installations that do not belong "
        "together (a file of one shadows the other's, and a mix of versions would run):\n"
        f"  {mine.package:<{width}}  from {describe(mine, mine_by)}\n"
        f"  {core.package:<{width}}  from {describe(core, core_by)}\n"
        f"Fix it with:\n  {fix(mine, core, mine_by, core_by)}"
    )
