"""Hypothesis strategies for secrets of every kind the redaction rules promise to catch.

Each strategy draws a ``Case``: the text to put somewhere (a log message, an
extra field, a span attribute ...) and the needles - the parts that must never
appear in what leaves the process. Surrounding "random text" is drawn from
lower-case letters and punctuation, and every needle holds a digit, an
upper-case letter or an ``@``, so a needle can only be found where it was put.
"""

from __future__ import annotations

import base64
import json
import string
from dataclasses import dataclass

from hypothesis import strategies as st

from otel_distro.redaction import luhn_valid

FILLER_ALPHABET = string.ascii_lowercase + " .,!?()"
BASE62 = string.ascii_letters + string.digits
URLSAFE = BASE62 + "-_"


@dataclass(frozen=True)
class Case:
    kind: str
    text: str  # the secret in its natural form, e.g. "Bearer abc..." or "https://u:pw@h/"
    needles: tuple[str, ...]
    key: str | None = None  # for by-key cases: the attribute/extra key


def _with_digit(chars: str, size: tuple[int, int]) -> st.SearchStrategy[str]:
    """Random characters with at least one digit and one upper-case letter in them."""
    return st.builds(lambda body, d, u, at: (body[:at] + d + u + body[at:]),
                     st.text(chars, min_size=size[0], max_size=size[1]),
                     st.sampled_from(string.digits), st.sampled_from(string.ascii_uppercase),
                     st.integers(0, size[0]))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# ---- card numbers: network prefix, Luhn check digit, 13-19 digits, grouped or not
_NETWORKS = [("4", (13, 16, 19)), ("51", (16,)), ("55", (16,)), ("2221", (16,)), ("34", (15,)),
             ("37", (15,)), ("6011", (16, 19)), ("65", (16,)), ("35", (16, 19)), ("36", (14,)),
             ("62", (16, 17, 18, 19))]


@st.composite
def cards(draw: st.DrawFn) -> Case:
    prefix, lengths = draw(st.sampled_from(_NETWORKS))
    length = draw(st.sampled_from(lengths))
    body = prefix + "".join(draw(st.lists(st.sampled_from(string.digits),
                                          min_size=length - len(prefix) - 1,
                                          max_size=length - len(prefix) - 1)))
    check = next(d for d in string.digits if luhn_valid(body + d))
    number = body + check
    sep = draw(st.sampled_from(["", " ", "-"]))
    shown = sep.join(number[i:i + 4] for i in range(0, len(number), 4)) if sep else number
    return Case("card", shown, (number, shown))


@st.composite
def jwts(draw: st.DrawFn) -> Case:
    header = _b64url(json.dumps({"alg": draw(st.sampled_from(["HS256", "RS256"])), "typ": "JWT"}).encode())
    claims = {"sub": draw(_with_digit(BASE62, (3, 12))), "iat": draw(st.integers(10**9, 2 * 10**9))}
    payload = _b64url(json.dumps(claims).encode())
    signature = _b64url(draw(st.binary(min_size=16, max_size=64)))
    token = f"{header}.{payload}.{signature}"
    return Case("jwt", token, (token, payload))


@st.composite
def bearers(draw: st.DrawFn) -> Case:
    token = draw(_with_digit(URLSAFE + ".~+/", (18, 60)))
    scheme = draw(st.sampled_from(["Bearer", "bearer", "Basic"]))
    return Case("bearer", f"Authorization: {scheme} {token}", (token,))


def _keyed(kind: str, prefix: str, chars: str, size: tuple[int, int]) -> st.SearchStrategy[Case]:
    return st.builds(lambda body: Case(kind, prefix + body, (prefix + body, body)),
                     _with_digit(chars, size))


google_keys = _keyed("google", "AIza", URLSAFE, (33, 33))  # 35 characters after AIza
slack_webhooks = st.builds(
    lambda team, bot, secret: Case("slack_webhook", f"https://hooks.slack.com/services/{team}/{bot}/{secret}",
                                   (secret,)),
    _with_digit(string.ascii_uppercase + string.digits, (8, 10)), _with_digit(string.ascii_uppercase, (8, 10)),
    _with_digit(BASE62, (22, 24)))
aws_keys = st.builds(lambda body: Case("aws", "AKIA" + body, ("AKIA" + body,)),
                     st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16))
openai_keys = st.one_of(_keyed("openai", "sk-", BASE62, (40, 56)),
                        _keyed("openai", "sk-proj-", URLSAFE, (48, 120)))
anthropic_keys = _keyed("anthropic", "sk-ant-api03-", URLSAFE, (80, 95))
github_tokens = st.one_of(
    st.builds(lambda p, b: Case("github", p + b, (p + b, b)), st.sampled_from(["ghp_", "gho_", "ghs_", "ghu_"]),
              _with_digit(BASE62, (34, 34))),
    _keyed("github", "github_pat_", BASE62 + "_", (80, 80)))
slack_tokens = st.builds(
    lambda kind, a, b, c: (lambda t: Case("slack", t, (t,)))(f"{kind}-{a}-{b}-{c}"),
    st.sampled_from(["xoxb", "xoxp", "xoxa"]), st.integers(10**10, 10**13), st.integers(10**10, 10**13),
    _with_digit(BASE62, (22, 30)))


@st.composite
def pem_keys(draw: st.DrawFn) -> Case:
    label = draw(st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]))
    raw = draw(st.binary(min_size=48, max_size=200))
    body = base64.b64encode(raw).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    text = f"-----BEGIN {label}PRIVATE KEY-----\n{lines}\n-----END {label}PRIVATE KEY-----"
    needles = tuple(line for line in lines.splitlines() if len(line) >= 16)
    return Case("pem", text, needles or (lines,))


@st.composite
def url_credentials(draw: st.DrawFn) -> Case:
    user = draw(st.text(string.ascii_lowercase, min_size=1, max_size=10))
    password = draw(_with_digit(BASE62 + "-._~!$*", (8, 30)))
    scheme = draw(st.sampled_from(["https", "postgres", "redis", "amqp", "mysql+pymysql"]))
    host = draw(st.sampled_from(["db.internal", "10.0.0.5", "cache:6379", "mq.example.com"]))
    return Case("url_credentials", f"{scheme}://{user}:{password}@{host}/x", (f":{password}@",))


@st.composite
def query_secrets(draw: st.DrawFn) -> Case:
    name = draw(st.sampled_from(["token", "access_token", "api_key", "apikey", "password", "client_secret",
                                 "sig", "signature", "X-Amz-Signature", "key", "refresh_token", "auth_token",
                                 "auth", "pwd", "pass", "passphrase", "credentials"]))
    value = draw(_with_digit(URLSAFE + "%.~", (8, 40)))
    text = f"https://api.example.com/v1/items?page=2&{name}={value}&sort=asc"
    return Case("query", text, (f"={value}",))


@st.composite
def emails(draw: st.DrawFn) -> Case:
    # All-digit local parts also look like a number to the card rule, which must let them go.
    local = draw(st.text(string.ascii_letters + string.digits + "._+-", min_size=1, max_size=24)
                 .filter(lambda s: s[0] not in "._+-" and s[-1] not in "._+-")
                 | st.text(string.digits, min_size=12, max_size=24))
    domain = draw(st.sampled_from(["example.com", "mail.example.org", "corp.co.uk", "x.io"]))
    address = f"{local}@{domain}"
    return Case("email", address, (address,))


SECRET_KEYS = ["password", "db.password", "passwd", "api_key", "X-Api-Key", "apiKey", "clientSecret",
               "client_secret", "session_id", "sessionid", "authorization", "Set-Cookie", "cookie",
               "refresh_token", "private_key", "secret", "AWS_SECRET_ACCESS_KEY", "csrftoken",
               "pwd", "pass", "passphrase", "credentials", "db_pwd", "user.pass"]


@st.composite
def keyed_values(draw: st.DrawFn) -> Case:
    """A secret only recognisable by its key: key=value in text, or an attribute/extra key."""
    key = draw(st.sampled_from(SECRET_KEYS))
    value = draw(_with_digit(BASE62 + "!#$%*-_", (8, 32)))
    form = draw(st.sampled_from(["{k}={v}", '"{k}": "{v}"', "{k}: {v}"]))
    return Case("key", form.format(k=key, v=value), (value,), key=key)


@st.composite
def scheme_tokens(draw: st.DrawFn) -> Case:
    """``Authorization: Token <hex>``: a scheme word the value rules do not know."""
    token = draw(_with_digit("0123456789abcdef", (24, 40)))
    scheme = draw(st.sampled_from(["Token", "token", "Digest", "ApiKey", "Key"]))
    return Case("scheme_token", f"Authorization: {scheme} {token}", (token,))


@st.composite
def passphrases(draw: st.DrawFn) -> Case:
    """``password: correct horse battery staple``: a value of several words after ``key:``."""
    key = draw(st.sampled_from(["password", "passphrase", "pwd", "pass", "credentials", "secret"]))
    words = draw(st.lists(_with_digit(string.ascii_lowercase, (3, 9)), min_size=2, max_size=5))
    return Case("passphrase", f"{key}: {' '.join(words)}", tuple(words), key=key)


@st.composite
def escaped_quotes(draw: st.DrawFn) -> Case:
    """``{"password": "ab\\"cd-tail"}``: a JSON value with escaped quotes in it."""
    key = draw(st.sampled_from(["password", "pwd", "api_key", "token", "credentials"]))
    parts = draw(st.lists(_with_digit(BASE62 + "-_", (4, 12)), min_size=2, max_size=4))
    value = '\\"'.join(parts)
    return Case("escaped_quote", json.dumps({key: "x"}).replace('"x"', f'"{value}"'), tuple(parts), key=key)


KINDS: dict[str, st.SearchStrategy[Case]] = {
    "card": cards(), "jwt": jwts(), "bearer": bearers(), "aws": aws_keys, "openai": openai_keys,
    "anthropic": anthropic_keys, "github": github_tokens, "slack": slack_tokens, "pem": pem_keys(),
    "url_credentials": url_credentials(), "query": query_secrets(), "email": emails(),
    "key": keyed_values(), "google": google_keys, "slack_webhook": slack_webhooks,
    "scheme_token": scheme_tokens(), "passphrase": passphrases(), "escaped_quote": escaped_quotes(),
}
# The kinds that exercise each value rule (tests/test_redaction_rules.py: every rule has some).
RULE_KINDS: dict[str, tuple[str, ...]] = {
    "pem": ("pem",), "urlcred": ("url_credentials",), "slackhook": ("slack_webhook",), "auth": ("bearer",),
    "jwt": ("jwt",), "aws": ("aws",), "sk": ("openai", "anthropic"), "google": ("google",),
    "github": ("github",), "slack": ("slack",), "card": ("card",), "email": ("email",),
}
any_secret = st.one_of(*KINDS.values())
filler = st.text(FILLER_ALPHABET, max_size=40)
separator = st.sampled_from([" ", "\n", " (", ": ", "=", " \"", "['", ", ", "\t"])


@st.composite
def embedded(draw: st.DrawFn, secret: st.SearchStrategy[Case] = any_secret) -> tuple[Case, str]:
    """A secret inside random text: ``filler sep secret sep filler``."""
    case = draw(secret)
    before = draw(filler) + draw(separator)
    after = draw(separator) + draw(filler)
    return case, before + case.text + after
