"""Java servers from Maven Central: one artifact and its dependencies, resolved into a cache.

`mvn dependency:copy-dependencies` on a throwaway POM puts every jar of the artifact's runtime
classpath in `<cache>/lib`; the server then runs as `java -cp '<cache>/lib/*' <main class>`.
A `.complete` file marks a finished resolution, so an interrupted one is redone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.sax.saxutils import escape

from tests.services import common

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>oscar.testenv</groupId>
  <artifactId>{name}</artifactId>
  <version>1</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
_DEPENDENCY = (
    "    <dependency><groupId>{0}</groupId><artifactId>{1}</artifactId>"
    "<version>{2}</version></dependency>"
)


def classpath_dir(name: str, version: str) -> Path:
    """Where `resolve(name, version, ...)` puts the jars."""
    return common.cache_dir(name, version) / "lib"


def is_resolved(name: str, version: str) -> bool:
    """Whether the jars of `name` `version` are in the cache and java is on PATH."""
    marker = common.cache_dir(name, version) / ".complete"
    return marker.is_file() and shutil.which("java") is not None


def resolve(name: str, version: str, coordinates: list[str]) -> Path:
    """Copy the runtime classpath of `coordinates` ("group:artifact:version") into the cache."""
    if is_resolved(name, version):
        print(f"[testenv] {name}: {version} cached", flush=True)
        return classpath_dir(name, version)
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise common.ServiceUnavailableError("Maven (mvn) and Java 17 are needed on PATH")
    folder = common.cache_dir(name, version)
    lib = classpath_dir(name, version)
    shutil.rmtree(lib, ignore_errors=True)
    dependencies = "\n".join(
        _DEPENDENCY.format(*(escape(part) for part in coordinate.split(":")))
        for coordinate in coordinates
    )
    (folder / "pom.xml").write_text(_POM.format(name=escape(name), dependencies=dependencies))
    print(f"[testenv] {name}: resolving {', '.join(coordinates)} from Maven Central", flush=True)
    common.run(
        ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
        cwd=folder,
        timeout=900,
    )
    (folder / ".complete").write_text("\n".join(coordinates) + "\n")
    return lib
