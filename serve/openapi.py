import json
E = {"$ref": "#/components/schemas/Error"}
def resp(desc, schema=None, ctype="application/json", headers=None):
    r = {"description": desc}
    if schema is not None:
        r["content"] = {ctype: {"schema": schema}}
    if headers: r["headers"] = headers
    return r
RA = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
def errs(shape=E, codes=(400,401,413,415,422,429,503,504), extra=None):
    d = {}
    texts = {400: "malformed JSON or invalid field", 401: "missing or wrong bearer token", 404: "not found",
             413: "the body is larger than the service accepts", 415: "the body is not JSON",
             422: "a field is invalid or a limit is above the server policy", 429: "the queue is full",
             500: "corral itself failed (host_error)", 503: "shutting down, or the deadline passed while queued",
             504: "the deadline passed while the run ran; it was cancelled"}
    for c in codes:
        d[str(c)] = resp(texts[c], shape if c != 401 else E, headers=RA if c in (429,503) else None)
    if extra: d.update(extra)
    return d
def body(schema): return {"required": True, "content": {"application/json": {"schema": schema}}}
nstr = {"type": "string", "nullable": True}
nint = {"type": "integer", "nullable": True}
LANGS = ["python", "python3", "py", "c", "cpp", "c++", "cxx", "cc", "rust", "rs", "javascript", "js", "nodejs", "node", "wat", "wasm"]
limits = {"type": "object", "additionalProperties": False, "properties": {
    "fuel": {"type": "integer", "minimum": 0, "maximum": 2000000000},
    "wall_time_ms": {"type": "integer", "minimum": 1, "maximum": 5000},
    "memory_bytes": {"type": "integer", "minimum": 0, "maximum": 268435456},
    "stdout_bytes": {"type": "integer", "minimum": 0, "maximum": 1048576},
    "stderr_bytes": {"type": "integer", "minimum": 0, "maximum": 1048576}},
    "description": "lower limits than the server policy's (the maxima shown are the bundled `strict` policy's; a value above the running server's policy is answered 422)"}
report_props = {
    "verdict": {"type": "string", "enum": ["ok","exit","trap","limit","denied","rejected","compile_error","invalid_input","host_error"]},
    "exit_code": nint, "limit": nstr, "trap": nstr, "message": {"type": "string"},
    "stdout": {"type": "string"}, "stderr": {"type": "string"},
    "stdout_truncated": {"type": "boolean"}, "stderr_truncated": {"type": "boolean"},
    "fuel_consumed": {"type": "integer"}, "module_hash": nstr,
    "record": {"type": "string", "nullable": True, "description": "the record's id (`blake3:…`), for /v1/records/{hash} and /v1/replay"},
    "deterministic": {"type": "boolean"},
    "calls": {"type": "object", "properties": {"total": {"type": "integer"}, "denials": {"type": "integer"}, "per_function": {"type": "object", "additionalProperties": {"type": "integer"}}}, "required": ["total","denials","per_function"]},
    "diagnostics": nstr, "trail_hash": nstr, "result": nstr,
    "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
    "wall_time_ms": {"type": "number"}}
report = {"type": "object", "properties": report_props, "required": list(report_props)}
program = {"code": {"type": "string", "description": "program text (with `language`)"},
           "wasm_base64": {"type": "string", "description": "a wasm binary, base64 (instead of `code`)"},
           "language": {"type": "string", "enum": LANGS}}
run_req = {"type": "object", "additionalProperties": False, "properties": dict(program, **{
    "stdin": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}},
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "seed": {"type": "integer", "minimum": 0}, "limits": {"$ref": "#/components/schemas/Limits"},
    "record": {"type": "boolean"}})}
case_req = {"type": "object", "additionalProperties": False, "properties": {
    "name": {"type": "string"}, "stdin": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}},
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "expect_stdout": {"type": "string"}, "expect_exit": {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
    "compare": {"type": "string", "enum": ["exact","trim","tokens"]}, "limits": {"$ref": "#/components/schemas/Limits"}}}
eval_req = {"type": "object", "additionalProperties": False, "required": ["cases"], "properties": dict(program, **{
    "cases": {"type": "array", "items": case_req, "maxItems": 10000},
    "compare": {"type": "string", "enum": ["exact","trim","tokens"]},
    "float_tolerance": {"type": "number", "minimum": 0}, "seed": {"type": "integer", "minimum": 0},
    "limits": {"$ref": "#/components/schemas/Limits"}, "record": {"type": "boolean"}})}
case_res = {"allOf": [{"$ref": "#/components/schemas/Report"}, {"type": "object", "required": ["case","status","reason"], "properties": {"case": {"type": "string"}, "status": {"type": "string"}, "reason": nstr}}]}
eval_res = {"type": "object", "required": ["cases","summary"], "properties": {
    "cases": {"type": "array", "items": case_res},
    "summary": {"type": "object", "required": ["summary","cases","passed","failed","by_status","wall_time_ms"], "properties": {
        "summary": {"type": "boolean"}, "cases": {"type": "integer"}, "passed": {"type": "integer"}, "failed": {"type": "integer"},
        "by_status": {"type": "object", "additionalProperties": {"type": "integer"}}, "wall_time_ms": {"type": "number"}}}}}
replay_res = {"allOf": [{"$ref": "#/components/schemas/Report"}, {"type": "object", "required": ["identical","divergence"], "properties": {
    "identical": {"type": "boolean"}, "divergence": {"type": "object", "nullable": True}, "notes": {"type": "array", "items": {"type": "string"}}, "recorded_verdict": {"type": "string"}}}]}
# SandboxFusion
stage_sf = {"type": "object", "nullable": True, "required": ["status"], "properties": {
    "status": {"type": "string", "enum": ["Finished","Error","TimeLimitExceeded"]}, "execution_time": {"type": "number", "nullable": True},
    "return_code": nint, "stdout": nstr, "stderr": nstr}}
sf_req = {"type": "object", "required": ["code","language"], "properties": {
    "code": {"type": "string"}, "language": {"type": "string", "enum": ["python","cpp","nodejs","rust"]},
    "stdin": {"type": "string", "nullable": True}, "compile_timeout": {"type": "number", "minimum": 0}, "run_timeout": {"type": "number", "minimum": 0},
    "memory_limit_MB": {"type": "number", "minimum": 1},
    "files": {"type": "object", "maxProperties": 0}, "fetch_files": {"type": "array", "maxItems": 0, "items": {"type": "string"}}}}
sf_res = {"type": "object", "required": ["status","message","compile_result","run_result","files"], "properties": {
    "status": {"type": "string", "enum": ["Success","Failed","SandboxError"]}, "message": {"type": "string"},
    "compile_result": stage_sf, "run_result": stage_sf, "executor_pod_name": nstr,
    "files": {"type": "object", "additionalProperties": {"type": "string"}}, "corral": {"type": "object"}}}
detail = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "array", "items": {"type": "object"}}}}
# Piston
pmsg = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
pstage = {"type": "object", "required": ["stdout","stderr","output","code","signal","status"], "properties": {
    "stdout": {"type": "string"}, "stderr": {"type": "string"}, "output": {"type": "string"}, "code": nint, "signal": nstr,
    "message": nstr, "status": {"type": "string", "nullable": True, "enum": ["RE","SG","TO","OL","EL","XX", None]},
    "cpu_time": {"type": "number"}, "wall_time": {"type": "number"}, "memory": {"type": "number", "nullable": True}}}
p_req = {"type": "object", "required": ["language","version","files"], "properties": {
    "language": {"type": "string", "enum": ["python","py","python3","javascript","js","c","c++","cpp","rust","rs"]},
    "version": {"type": "string", "enum": ["*", "x"]},
    "files": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"type": "object", "required": ["content"], "properties": {
        "name": {"type": "string", "enum": ["main.py", "main.c", "main.cpp", "main.rs", "main.js"]}, "content": {"type": "string"}, "encoding": {"type": "string", "enum": ["utf8"]}}}},
    "stdin": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}},
    "compile_timeout": {"type": "number", "minimum": 0}, "run_timeout": {"type": "integer", "minimum": 0, "maximum": 5000},
    "compile_cpu_time": {"type": "number", "minimum": 0}, "run_cpu_time": {"type": "integer", "minimum": 0, "maximum": 5000},
    "compile_memory_limit": {"type": "number"}, "run_memory_limit": {"type": "integer", "minimum": 0, "maximum": 268435456}}}
p_res = {"type": "object", "required": ["language","version","run"], "properties": {"language": {"type": "string"}, "version": {"type": "string"}, "run": pstage, "compile": pstage}}
# Judge0
jerr = {"type": "object", "additionalProperties": True}
status_obj = {"type": "object", "required": ["id","description"], "properties": {"id": {"type": "integer"}, "description": {"type": "string"}}}
sub_view = {"type": "object", "additionalProperties": True, "properties": {"token": {"type": "string"}, "status": status_obj, "stdout": nstr, "stderr": nstr, "compile_output": nstr, "message": nstr, "time": nstr, "memory": {"type": "number", "nullable": True}}}
sub_req = {"type": "object", "required": ["source_code","language_id"], "properties": {
    "source_code": {"type": "string", "minLength": 1}, "language_id": {"type": "integer", "enum": [50,52,54,63,71,73,75,76]},
    "stdin": {"type": "string"}, "expected_output": {"type": "string"}, "command_line_arguments": {"type": "string"},
    "cpu_time_limit": {"type": "number", "minimum": 0, "maximum": 5}, "wall_time_limit": {"type": "number", "minimum": 0.001, "maximum": 5},
    "memory_limit": {"type": "number", "minimum": 2048, "maximum": 262144}, "redirect_stderr_to_stdout": {"type": "boolean"},
    "number_of_runs": {"type": "integer", "minimum": 1, "maximum": 20}}}
b64q = {"name": "base64_encoded", "in": "query", "schema": {"type": "string", "enum": ["true","false"]}}
fieldsq = {"name": "fields", "in": "query", "schema": {"type": "string", "enum": ["*", "token,status,stdout", "stdout,stderr,status_id,language_id"]}}
waitq = {"name": "wait", "in": "query", "schema": {"type": "string", "enum": ["true","false"]}}
doc = {
 "openapi": "3.0.3",
 "info": {"title": "corral serve", "version": "1",
   "description": "corral's HTTP service: its own API (/v1), health, metrics, and the SandboxFusion, Piston v2 and Judge0 CE shapes. Every run ends in a verdict; see docs/interface.md for the verdict→status mapping of each compatible API."},
 "components": {
   "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
   "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
               "Limits": limits, "Report": report}},
 "security": [{"bearer": []}, {}],
 "paths": {
  "/healthz": {"get": {"summary": "liveness", "security": [], "responses": {"200": resp("alive", {"type": "object"})}}},
  "/readyz": {"get": {"summary": "readiness (503 while shutting down)", "security": [], "responses": {"200": resp("ready", {"type": "object"}), "503": resp("draining", {"type": "object"}, headers=RA)}}},
  "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": resp("metrics", {"type": "string"}, "text/plain"), "401": resp("unauthorised", E)}}},
  "/openapi.json": {"get": {"summary": "this document", "responses": {"200": resp("the document", {"type": "object"}), "401": resp("unauthorised", E)}}},
  "/v1/run": {"post": {"summary": "run a program once", "requestBody": body(run_req),
     "responses": dict({"200": resp("the report (every guest outcome is a verdict)", {"$ref": "#/components/schemas/Report"}),
                         "422": resp("invalid request, or an invalid_input report", {"oneOf": [E, {"$ref": "#/components/schemas/Report"}]}),
                         "500": resp("a host_error report", {"$ref": "#/components/schemas/Report"})},
                        **{k: v for k, v in errs().items() if k != "422"})}},
  "/v1/eval": {"post": {"summary": "one program, many cases (compiled once)", "requestBody": body(eval_req),
     "responses": dict({"200": resp("per-case reports and a summary", eval_res), "500": resp("host failure", E)}, **errs())}},
  "/v1/records/{hash}": {"get": {"summary": "a run record", "parameters": [{"name": "hash", "in": "path", "required": True, "schema": {"type": "string"}}],
     "responses": {"200": resp("the record (canonical JSON)", {"type": "object"}), "401": resp("unauthorised", E), "404": resp("no such record", E)}}},
  "/v1/replay": {"post": {"summary": "replay a record of this service", "requestBody": body({"type": "object", "additionalProperties": False, "required": ["record"], "properties": {"record": {"type": "string"}}}),
     "responses": dict({"200": resp("the replayed report", replay_res), "404": resp("no such record", E), "500": resp("host failure", E),
                        "422": resp("the record was refused (nothing ran)", {"oneOf": [E, replay_res]})}, **{k: v for k, v in errs().items() if k != "422"})}},
  "/run_code": {"post": {"summary": "SandboxFusion run_code", "requestBody": body(sf_req),
     "responses": dict({"200": resp("the result", sf_res)}, **errs(detail, codes=(400,401,413,415,422,429,500,503,504)))}},
  "/api/v2/runtimes": {"get": {"summary": "Piston v2 runtimes", "responses": {"200": resp("runtimes", {"type": "array", "items": {"type": "object", "required": ["language","version","aliases"]}}), "401": resp("unauthorised", E)}}},
  "/api/v2/execute": {"post": {"summary": "Piston v2 execute", "requestBody": body(p_req),
     "responses": dict({"200": resp("the stages", p_res)}, **errs(pmsg, codes=(400,401,413,415,422,429,500,503,504)))}},
  "/languages": {"get": {"summary": "Judge0 languages", "responses": {"200": resp("languages", {"type": "array", "items": {"type": "object", "required": ["id","name"]}}), "401": resp("unauthorised", E)}}},
  "/languages/{id}": {"get": {"summary": "Judge0 language", "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
     "responses": {"200": resp("the language", {"type": "object", "required": ["id","name"]}), "401": resp("unauthorised", E), "404": resp("unknown", E)}}},
  "/statuses": {"get": {"summary": "Judge0 statuses", "responses": {"200": resp("statuses", {"type": "array", "items": status_obj}), "401": resp("unauthorised", E)}}},
  "/about": {"get": {"summary": "Judge0 about", "responses": {"200": resp("about", {"type": "object", "required": ["version"]}), "401": resp("unauthorised", E)}}},
  "/config_info": {"get": {"summary": "Judge0 configuration", "responses": {"200": resp("configuration", {"type": "object"}), "401": resp("unauthorised", E)}}},
  "/submissions": {"post": {"summary": "Judge0 create submission", "parameters": [b64q, waitq, fieldsq], "requestBody": body(sub_req),
     "responses": dict({"201": resp("token, or the submission with wait=true", sub_view), "422": resp("validation errors by field", jerr)},
                       **{k: v for k, v in errs(jerr, codes=(400,401,413,415,429,500,503,504)).items()})}},
  "/submissions/batch": {
     "post": {"summary": "Judge0 create submissions", "parameters": [b64q], "requestBody": body({"type": "object", "required": ["submissions"], "properties": {"submissions": {"type": "array", "minItems": 1, "maxItems": 20, "items": sub_req}}}),
       "responses": dict({"201": resp("tokens or errors, aligned", {"type": "array", "items": {"type": "object"}}), "422": resp("no submission was valid", {"type": "array", "items": {"type": "object"}})},
                         **errs(jerr, codes=(400,401,413,415)))},
     "get": {"summary": "Judge0 get submissions", "parameters": [b64q, fieldsq, {"name": "tokens", "in": "query", "required": True, "schema": {"type": "string"}}],
       "responses": {"200": resp("submissions (null for unknown tokens)", {"type": "object", "required": ["submissions"], "properties": {"submissions": {"type": "array", "items": {"type": "object", "nullable": True}}}}),
                     "400": resp("bad parameters", jerr), "401": resp("unauthorised", E)}}},
  "/submissions/{token}": {"get": {"summary": "Judge0 get submission", "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}, b64q, fieldsq],
     "responses": {"200": resp("the submission", sub_view), "400": resp("bad parameters", jerr), "401": resp("unauthorised", E), "404": resp("unknown token", jerr)}}},
 }}
print(json.dumps(doc, indent=1))
