"""The real clients from PyPI against a running `corral serve` (CORRAL_URL) and `corral mcp`
(CORRAL_BIN): sandbox-fusion (as verl's reward code calls /run_code), the official judge0 SDK,
Piston v2 (raw requests following its spec: no maintained client exists), and the official MCP
Python SDK over stdio and streamable HTTP. Run by scripts/clients.sh."""

import asyncio
import base64
import json
import os

import httpx
import pytest
import requests

URL = os.environ["CORRAL_URL"]
BIN = os.environ["CORRAL_BIN"]
STORE = os.environ["CORRAL_STORE"]
# The MCP SDK starts a stdio server with only a few inherited variables (HOME, PATH, …):
# `corral mcp` gets the suite's CORRAL_HOME explicitly, so it uses the language runners that
# home has built (not the user's cache, where a runner may still have to be built).
MCP_ENV = {k: os.environ[k] for k in ("CORRAL_HOME",) if k in os.environ}

CPP_OK = '#include <iostream>\nint main(){int a,b; std::cin>>a>>b; std::cout<<a+b<<"\\n";}\n'
CPP_BAD = "int main() { return undefined_name; }\n"


# ---------------------------------------------------------------------------------------
# SandboxFusion, the way verl's reward code (verl/utils/reward_score/sandbox_fusion/utils.py)
# calls it: one POST per test case with this payload and these headers, then its rules.

def verl_case(code, stdin, expected, language="python", timeout=10):
    payload = json.dumps({"compile_timeout": timeout, "run_timeout": timeout, "code": code,
                          "stdin": stdin, "language": language, "files": {}, "fetch_files": []})
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    r = requests.post(f"{URL}/run_code", headers=headers, data=payload, timeout=60)
    r.raise_for_status()
    resp = r.json()
    api_status = resp.get("status")
    cr, rr = resp.get("compile_result"), resp.get("run_result")
    if api_status == "SandboxError":
        return -1, resp
    if api_status == "Failed":
        if cr and (cr.get("status") in ["Error", "TimeLimitExceeded"]
                   or (cr.get("status") == "Finished" and cr.get("return_code") != 0)):
            return -4, resp
        if rr:
            if rr.get("status") == "TimeLimitExceeded":
                return -3, resp
            if rr.get("status") == "Error" or rr.get("return_code") != 0:
                return -2, resp
        return -1, resp
    if api_status == "Success" and rr and rr.get("status") == "Finished":
        return str(rr.get("stdout") or "").rstrip("\n") == str(expected).rstrip("\n"), resp
    return -1, resp


def test_fusion_verl_python():
    code = "a, b = map(int, input().split())\nprint(a + b)\n"
    assert verl_case(code, "1 2", "3")[0] is True
    assert verl_case(code, "1 2", "4")[0] is False
    assert verl_case("raise SystemExit(3)", "", "")[0] == -2
    assert verl_case("import sys\nprint(1/0)", "", "")[0] == -2
    assert verl_case("while True:\n    pass\n", "", "", timeout=1)[0] == -3


def test_fusion_verl_cpp_and_compile_error():
    ok, resp = verl_case(CPP_OK, "2 5", "7", language="cpp")
    assert ok is True, resp
    bad, resp = verl_case(CPP_BAD, "", "", language="cpp")
    assert bad == -4, resp
    assert "undefined_name" in resp["compile_result"]["stderr"]
    assert resp["run_result"] is None


def test_fusion_client_models_and_summary():
    from sandbox_fusion import (RunCodeRequest, RunStatus, SummaryMapping, run_code,
                                summary_run_code_result)
    mapping = SummaryMapping(CompileFailed="compile", RunFailed="run", RunTimeout="timeout")
    r = run_code(RunCodeRequest(code="print('hello')", language="python"), endpoint=URL,
                 max_attempts=1)
    assert r.status == RunStatus.Success and r.run_result.stdout == "hello\n"
    assert summary_run_code_result(r, mapping) == "Success"
    r = run_code(RunCodeRequest(code=CPP_BAD, language="cpp"), endpoint=URL, max_attempts=1)
    assert r.status == RunStatus.Failed and summary_run_code_result(r, mapping) == "compile"
    r = run_code(RunCodeRequest(code="exit(2)", language="python"), endpoint=URL, max_attempts=1)
    assert summary_run_code_result(r, mapping) == "run"
    r = run_code(RunCodeRequest(code="while 1: pass", language="python", run_timeout=0.5),
                 endpoint=URL, max_attempts=1)
    assert summary_run_code_result(r, mapping) == "timeout"
    # A record id comes back, and the record replays identically.
    rec = r.dict().get("corral") or requests.post(
        f"{URL}/run_code", json={"code": "print(1)", "language": "python"}).json()["corral"]
    assert rec["record"].startswith("blake3:")
    rep = requests.post(f"{URL}/v1/replay", json={"record": rec["record"]}).json()
    assert rep["identical"] is True


def test_fusion_unsupported_is_their_error_shape():
    r = requests.post(f"{URL}/run_code", json={"code": "x", "language": "go"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "language"]
    r = requests.post(f"{URL}/run_code",
                      json={"code": "x", "language": "python", "files": {"a.txt": "eA=="}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "files"]


# ---------------------------------------------------------------------------------------
# Judge0 CE with the official SDK (it always uses base64 and polls), plus wait=true raw.

@pytest.fixture(scope="module")
def j0():
    import judge0
    return judge0.Client(URL)


def test_judge0_single(j0):
    import judge0
    s = judge0.run(client=j0, source_code="print(input()[::-1])", stdin="abc",
                   language=judge0.PYTHON)
    assert s.stdout == "cba\n" and s.status == judge0.Status.ACCEPTED
    s = judge0.run(client=j0, source_code="int main(){volatile int z=0, a=7; return a/z;}", language=judge0.C)
    assert s.status in (judge0.Status.RUNTIME_ERROR_SIGFPE,), s.status
    s = judge0.run(client=j0, source_code="int main({", language=judge0.CPP)
    assert s.status == judge0.Status.COMPILATION_ERROR and s.compile_output


def test_judge0_expected_output(j0):
    import judge0
    cases = [judge0.TestCase(input="1 2", expected_output="3"),
             judge0.TestCase(input="2 2", expected_output="5")]
    res = judge0.run(client=j0, source_code="a,b=map(int,input().split());print(a+b)",
                     language=judge0.PYTHON, test_cases=cases)
    assert [r.status for r in res] == [judge0.Status.ACCEPTED, judge0.Status.WRONG_ANSWER]


def test_judge0_batch(j0):
    import judge0
    subs = [judge0.Submission(source_code=f"print({i}*{i})", language=judge0.PYTHON)
            for i in range(5)]
    res = judge0.run(client=j0, submissions=subs)
    assert [r.stdout for r in res] == [f"{i * i}\n" for i in range(5)]


def test_judge0_wait_and_base64_raw():
    src = base64.b64encode(b"print('hi')").decode()
    r = httpx.post(f"{URL}/submissions?wait=true&base64_encoded=true",
                   json={"source_code": src, "language_id": 71}, timeout=60)
    assert r.status_code == 201
    body = r.json()
    assert base64.b64decode(body["stdout"]) == b"hi\n" and body["status"]["id"] == 3
    r = httpx.post(f"{URL}/submissions?wait=true",
                   json={"source_code": "print('hi')", "language_id": 71,
                         "expected_output": "bye"}, timeout=60)
    assert r.json()["status"]["description"] == "Wrong Answer"
    r = httpx.post(f"{URL}/submissions?wait=true",
                   json={"source_code": "x", "language_id": 71, "enable_network": True})
    assert r.status_code == 422 and "enable_network" in r.json()
    r = httpx.post(f"{URL}/submissions", json={"source_code": "x", "language_id": 999})
    assert r.status_code == 422 and "language_id" in r.json()


# ---------------------------------------------------------------------------------------
# Piston v2, following the spec (engineer-man/piston api/src/api/v2.js).

def test_piston_runtimes_and_execute():
    rts = requests.get(f"{URL}/api/v2/runtimes").json()
    assert any(r["language"] == "python" for r in rts)
    r = requests.post(f"{URL}/api/v2/execute", json={
        "language": "python", "version": "3.x",
        "files": [{"name": "main.py", "content": "print(input())"}], "stdin": "hey"}).json()
    assert r["run"]["stdout"] == "hey\n" and r["run"]["code"] == 0 and r["run"]["signal"] is None
    r = requests.post(f"{URL}/api/v2/execute", json={
        "language": "c++", "version": "*", "files": [{"content": CPP_BAD}]}).json()
    assert r["compile"]["code"] != 0 and r["run"] == r["compile"]
    r = requests.post(f"{URL}/api/v2/execute", json={
        "language": "python", "version": "*", "files": [{"content": "while 1: pass"}],
        "run_timeout": 300}).json()
    assert r["run"]["status"] == "TO" and r["run"]["signal"] == "SIGKILL"
    r = requests.post(f"{URL}/api/v2/execute", json={
        "language": "cobol", "version": "*", "files": [{"content": "x"}]})
    assert r.status_code == 400 and "runtime is unknown" in r.json()["message"]
    r = requests.post(f"{URL}/api/v2/execute", data="{}",
                      headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


# ---------------------------------------------------------------------------------------
# MCP: the official Python SDK, over stdio (`corral mcp`) and streamable HTTP (/mcp).

def content_text(result):
    return "".join(getattr(c, "text", "") for c in result.content)


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent")


def is_error(result):
    v = getattr(result, "is_error", None)
    return v if v is not None else getattr(result, "isError", False)


async def exercise_mcp(client):
    tools = await client.list_tools()
    names = sorted(t.name for t in tools.tools)
    assert names == ["replay", "run_code", "run_tests"], names
    r = await client.call_tool("run_code", {"code": "print(6*7)", "language": "python"})
    assert not is_error(r) and "42" in content_text(r)
    rep = structured(r)
    assert rep["verdict"] == "ok" and rep["stdout"] == "42\n" and rep["record"]
    r2 = await client.call_tool("replay", {"record": rep["record"]})
    assert structured(r2)["identical"] is True, content_text(r2)
    r3 = await client.call_tool("run_tests", {
        "code": "print(int(input())*2)", "language": "python",
        "cases": [{"stdin": "2", "expected_stdout": "4"}, {"stdin": "3", "expected_stdout": "7"}]})
    s = structured(r3)
    assert s["passed"] == 1 and s["failed"] == 1 and [c["status"] for c in s["cases"]] == ["pass", "fail"]
    # Errors are tool results, not protocol failures.
    r4 = await client.call_tool("run_code", {"code": "x", "language": "cobol"})
    assert is_error(r4) and "unknown language" in content_text(r4)
    r5 = await client.call_tool("run_code", {"code": "while True: pass", "language": "python",
                                             "timeout_ms": 200})
    assert structured(r5)["verdict"] == "limit"


def test_mcp_stdio():
    from mcp import Client, StdioServerParameters
    params = StdioServerParameters(command=BIN, args=["mcp", "--record-dir", STORE], env=MCP_ENV)

    async def go():
        async with Client(params) as client:
            await exercise_mcp(client)
    asyncio.run(go())


def test_mcp_stdio_low_level_session():
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    params = StdioServerParameters(command=BIN, args=["mcp", "--record-dir", STORE], env=MCP_ENV)

    async def go():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await exercise_mcp(session)
    asyncio.run(go())


def test_mcp_streamable_http():
    from mcp import Client

    async def go():
        async with Client(f"{URL}/mcp") as client:
            await exercise_mcp(client)
    asyncio.run(go())
