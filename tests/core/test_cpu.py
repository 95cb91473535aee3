import pytest

from embedloop.core import cpu
from embedloop.core.models.export import cpu_isa

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 2.00GHz
flags\t\t: fpu sse4_2 avx2 avx512f avx512_vnni
bugs\t\t: spectre_v1

processor\t: 1
model name\t: Example CPU @ 2.00GHz
flags\t\t: fpu sse4_2 avx2 avx512f avx512_vnni
"""


@pytest.fixture
def fake_cpuinfo(tmp_path, monkeypatch):
    def use(text):
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        monkeypatch.setattr(cpu, "CPUINFO", path)
        cpu._cpuinfo.cache_clear()

    yield use
    cpu._cpuinfo.cache_clear()


def test_flags_and_model_come_from_cpuinfo(fake_cpuinfo, monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    fake_cpuinfo(CPUINFO)
    assert cpu.cpu_flags() == {"fpu", "sse4_2", "avx2", "avx512f", "avx512_vnni"}  # not "spectre_v1"
    assert cpu.cpu_model() == "Example CPU @ 2.00GHz"
    assert cpu_isa() == "avx512_vnni"
    fake_cpuinfo(CPUINFO.replace(" avx512f avx512_vnni", ""))
    assert cpu_isa() == "avx2"


def test_no_cpuinfo_means_no_flags(fake_cpuinfo, tmp_path, monkeypatch):
    monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "missing")
    cpu._cpuinfo.cache_clear()
    assert cpu.cpu_flags() == frozenset()
