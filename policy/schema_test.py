#!/usr/bin/env python3
"""Keeps policy/schema.json honest, with a real JSON Schema validator
(Debian's python3-jsonschema, draft 2020-12), and holds the policy parser to
the same verdicts:

 - schema.json is a valid draft 2020-12 schema;
 - every valid test configuration (policy/testdata/valid_*.json) and every
   example program's configuration pass both the schema and the parser, and
   so does the parser's own rendering of them (ExplainSnapshot, printed by
   config_verdict);
 - lockctl's test configurations agree with what lockctl_test expects of
   them: tools/lockctl/testdata/good.json passes, bad.json fails;
 - every file of the malformed corpus (policy/testdata/invalid_*.json) fails
   the parser and, unless its name says the rule is beyond the schema ("invalid_beyond_schema_*": cross-field and cross-entry
   rules, files that must exist), the schema too;
 - every policy file shown in README.md and docs/ (a ```json block with
   "redis", "defaults" or "policies" at the top) passes the schema. Only the
   schema: they name TLS certificates that exist where they are used, not
   here, so the parser's file checks cannot pass.

The parser's verdicts come from config_verdict, run once over every file.
"""

import glob
import json
import os
import re
import subprocess
import sys
import unittest

import jsonschema

ROOT = os.path.join(os.environ.get("TEST_SRCDIR", "."),
                    os.environ.get("TEST_WORKSPACE", "redis_lock"))
BEYOND_SCHEMA = "invalid_beyond_schema_"
# The one password_env variable a corpus file names on purpose so that it is
# unset (invalid_beyond_schema_password_env_unset.json).
NEVER_SET = "POLICY_TEST_NEVER_SET"


def path(rel):
    return os.path.join(ROOT, rel)


def read_json(file):
    with open(file, encoding="utf-8") as f:
        return json.load(f)


def testdata(prefix):
    return sorted(glob.glob(path("policy/testdata/%s*.json" % prefix)))


# lockctl's test configurations (//tools/lockctl:configs): lockctl_test
# expects `lockctl validate` to accept the first and refuse the second.
LOCKCTL_VALID = [path("tools/lockctl/testdata/good.json")]
LOCKCTL_INVALID = [path("tools/lockctl/testdata/bad.json")]

# Valid and invalid configurations: the parser and the schema must agree.
VALID = (testdata("valid_") +
         sorted(glob.glob(path("examples/**/*.json"), recursive=True)) +
         LOCKCTL_VALID)
INVALID = testdata("invalid_") + LOCKCTL_INVALID


def password_variables(config):
    """The variables the targets' password_env fields name (the parser needs
    them set; their values do not matter here)."""
    names = set()
    targets = config.get("redis") if isinstance(config, dict) else None
    if not isinstance(targets, dict):
        return names
    for target in targets.values():
        if not isinstance(target, dict):
            continue
        for field in ("password_env", "sentinel_password_env"):
            var = target.get(field)
            if isinstance(var, str) and var and var != NEVER_SET:
                names.add(var)
    return names


def parser_verdicts(files):
    """config_verdict's line for each file, by path."""
    env = dict(os.environ)
    for file in files:
        for var in password_variables(read_json(file)):
            env.setdefault(var, "test-password")
    env.pop(NEVER_SET, None)
    out = subprocess.run([path("policy/config_verdict")] + files, env=env,
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    return {line["file"]: line for line in lines}


def doc_policy_files():
    """(where, config) for every policy file shown in the documents."""
    found = []
    docs = [path("README.md")] + sorted(glob.glob(path("docs/*.md")))
    for doc in docs:
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"^```json\n(.*?)^```", text, re.S | re.M):
            config = json.loads(m.group(1))
            if isinstance(config, dict) and {"redis", "defaults",
                                             "policies"} & config.keys():
                line = text.count("\n", 0, m.start()) + 1
                found.append(("%s:%d" % (os.path.relpath(doc, ROOT), line),
                              config))
    return found


class SchemaTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.schema = read_json(path("policy/schema.json"))
        cls.validator = jsonschema.Draft202012Validator(cls.schema)
        cls.verdicts = parser_verdicts(VALID + INVALID)

    def schema_errors(self, instance):
        return ["%s: %s" % ("/" + "/".join(map(str, e.absolute_path)),
                            e.message)
                for e in self.validator.iter_errors(instance)]

    def test_is_a_valid_draft_2020_12_schema(self):
        self.assertEqual(self.schema["$schema"],
                         "https://json-schema.org/draft/2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(self.schema)

    def test_found_the_corpus(self):
        self.assertGreaterEqual(len(testdata("valid_")), 3)
        self.assertGreaterEqual(len(testdata("invalid_")), 10)
        self.assertGreaterEqual(len(testdata(BEYOND_SCHEMA)), 1)
        self.assertGreaterEqual(
            len(glob.glob(path("examples/*/policies.json"))), 1,
            "no example configuration in the runfiles (EXAMPLE_CONFIGS)")
        for file in LOCKCTL_VALID + LOCKCTL_INVALID:
            self.assertTrue(os.path.isfile(file),
                            "%s is not in the runfiles (LOCKCTL_CONFIGS)" % file)

    def test_valid_configurations_pass_schema_and_parser(self):
        for file in VALID:
            with self.subTest(file=os.path.relpath(file, ROOT)):
                self.assertEqual(self.schema_errors(read_json(file)), [])
                verdict = self.verdicts[file]
                self.assertTrue(verdict["accepted"], verdict.get("error"))
                self.assertEqual(self.schema_errors(verdict["explained"]), [],
                                 json.dumps(verdict["explained"], indent=2))

    def test_invalid_configurations_are_rejected(self):
        for file in INVALID:
            with self.subTest(file=os.path.relpath(file, ROOT)):
                self.assertFalse(self.verdicts[file]["accepted"])
                errors = self.schema_errors(read_json(file))
                if os.path.basename(file).startswith(BEYOND_SCHEMA):
                    # If the schema starts to see the rule, the file should
                    # lose the "beyond_schema" in its name.
                    self.assertEqual(errors, [])
                else:
                    self.assertTrue(errors, "the schema accepts it")

    def test_documented_configurations_pass_schema(self):
        found = doc_policy_files()
        self.assertGreaterEqual(len(found), 1, "no ```json policy file in docs")
        for where, config in found:
            with self.subTest(doc=where):
                self.assertEqual(self.schema_errors(config), [])

    def test_rejects_typical_mistakes(self):
        good = {"redis": {"default": {"addrs": ["h:1"]}},
                "policies": {"a": {"ttl": "1s"}}}
        self.assertEqual(self.schema_errors(good), [])
        for bad in TYPICAL_MISTAKES:
            with self.subTest(config=bad):
                self.assertTrue(self.schema_errors(json.loads(bad)),
                                "the schema accepts it")


TYPICAL_MISTAKES = [
    '{"policies": {"a": {"ttl": "1 s"}}}',
    '{"policies": {"a": {"ttl": "0s"}}}',
    '{"policies": {"a": {"retry": {"jitter": 2}}}}',
    '{"policies": {"a": {"retry": {"max_attempts": 1.5}}}}',
    '{"policies": {"a": {"renewal": {"threshold": 0}}}}',
    '{"policies": {"a": {"on_busy": "maybe"}}}',
    '{"policies": {"a b": {}}}',
    '{"policies": {"a": {"kind": "rw"}}}',
    '{"policies": {"a": {"kind": "semaphore", "permits": 0}}}',
    '{"policies": {"a": {"kind": "semaphore", "permits": 1000001}}}',
    '{"policies": {"a": {"kind": "mutex", "permits": 2}}}',
    '{"policies": {"a": {"kind": "fair", "hold_at_least": "1s"}}}',
    '{"policies": {"a": {"kind": "fair", "hold_at_least": "0.5s"}}}',
    '{"defaults": {"extends": "a"}}',
    '{"redis": {"r": {"addrs": []}}}',
    '{"redis": {"r": {"addrs": ["h:1", "h:1"], "mode": "redlock"}}}',
    '{"redis": {"r": {"mode": "sentinel", "sentinels": ["s:1"], '
    '"master_name": ""}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "master_name": "m"}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "password_env": "1X"}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "tls": {"cert_file": "c.pem"}}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "tls": {"key_file": "k.pem"}}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "tls": {"verify": false}}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "tls": {"enabled": "yes"}}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "tls": true}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "sentinel_username": "u"}}}',
    '{"redis": {"r": {"addrs": ["h:1"], "sentinel_password_env": "P"}}}',
    '{"redis": {"r": {"mode": "sentinel", "sentinels": ["s:1"], '
    '"master_name": "m", "sentinel_username": "u"}}}',
    '{"extra": 1}',
]

if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
