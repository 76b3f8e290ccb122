"""One set of secret and PII rules for everything that leaves the process.

Rules, applied to log bodies and attributes (OTLP and console), span names,
span attributes, span event and link attributes (``exception.message``,
``exception.stacktrace`` ...), span status messages, resource attributes and
metric point attributes:

- **by key**: a key whose last words (split at ``_ - .``, spaces and camelCase,
  case-insensitive; an ``_id``/``_value``/``_key``... may follow) are password, passwd, passphrase, secret, token,
  api_key/apikey, authorization, cookie, set-cookie, session, private_key,
  client_secret, credential(s) - or one of ``OTEL_DISTRO_REDACT_KEYS`` - gets
  the value ``[REDACTED]``. Whole words only: ``gen_ai.usage.input_tokens`` is
  a count, not a token, and is kept;
- **by value**, inside any text: bearer/basic credentials, JWTs, AWS access key
  ids, OpenAI/Anthropic (``sk-``/``sk-ant-``), Stripe, Google, GitHub and Slack
  keys and Slack webhook URLs, PEM private keys, card numbers (13-19 digits,
  a card-network first digit 2-6, Luhn-valid, groups separated by nothing or
  by spaces/dashes), the password of ``scheme://user:password@`` URLs, values
  of secret-looking query parameters and ``key=value`` / ``"key": "value"``
  pairs, ``OTEL_DISTRO_REDACT_PATTERNS``, and e-mail addresses (masked,
  hashed or kept: ``OTEL_DISTRO_REDACT_EMAILS``);
- integers that are card numbers are replaced too.

Values are recognised as tokens: a secret glued to letters or digits on
either side (``abc4111111111111111``) is not taken for one.

For OTLP the rules run in the exporters' worker threads, never in the thread
that logs or ends a span: in front of the SDK's OTLP/HTTP span and log exporters
the wrappers below encode the request themselves, redacting on the way
(:mod:`otel_distro.otlp_wire`, also with redaction off); in front of any other
exporter they redact copies before delegating.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

_log = logging.getLogger("otel_distro")

REDACTED = "[REDACTED]"

# ---------------------------------------------------------------- keys

# Words of a normalised key (lower case, words joined by "_") that mark a secret.
# A word may carry a prefix glued to it (dbpassword, csrftoken, clientsecret).
_KEY_WORDS = (
    r"[a-z0-9]*(?:passwords?|passwd|passphrase|secrets?|token|apikey|privatekey|sessionid|cookies?"
    r"|authorization|credentials?)",
    r"api_key", r"private_key", r"client_secret", r"set_cookie", r"session", r"access_key",
    r"secret_key",
)
# Query parameters whose value is a credential although the name is not one above.
_QUERY_WORDS = (r"sig", r"signature", r"key", r"code", r"x_amz_credential", r"x_amz_signature",
                r"pwd", r"pass")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s\-.:/\[\]]+")


def normalise_key(key: str) -> str:
    """``X-Api-Key``, ``xApiKey`` and ``x.api_key`` all become ``x_api_key``."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key)).lower().strip("_")


# A secret word ends the key, or is followed by one of these: session_id, api_key_value.
# "gen_ai.token.type" names a kind of token, not a token.
_SUFFIXES = r"(?:_(?:id|value|key|string|str|raw|b64|base64|hex|data|header|text))?"


def _word_regex(words: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"(?:^|_)(?:" + "|".join(words) + r")" + _SUFFIXES + r"$")


# ---------------------------------------------------------------- values

_TOKEN_START = r"(?<![A-Za-z0-9_])"
_TOKEN_END = r"(?![A-Za-z0-9_])"

# Each alternative is one named group; the first that matches at the leftmost
# position wins, so the order below matters (a URL's credentials before an e-mail).
_VALUE_RULES: tuple[tuple[str, str], ...] = (
    ("pem", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\Z)"),
    ("urlcred", r"(?P<urlcred_head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:]*:)[^\s/?#@]+(?=@)"),
    ("slackhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]+"),
    ("auth", r"\b(?P<auth_scheme>[Bb]earer|BEARER|[Bb]asic|BASIC)(?P<auth_gap>\s+)"
             r"(?P<auth_value>[A-Za-z0-9\-._~+/]+=*)"),
    ("jwt", _TOKEN_START + r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"),
    ("aws", _TOKEN_START + r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}" + _TOKEN_END),
    ("sk", r"(?<![A-Za-z0-9_\-])(?:sk|rk)[-_][A-Za-z0-9_\-]{20,}"),
    ("google", _TOKEN_START + r"AIza[0-9A-Za-z_\-]{35}"),
    ("github", _TOKEN_START + r"(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})"),
    ("slack", _TOKEN_START + r"(?:xox[abposr]|xapp)-[A-Za-z0-9\-]{10,}"),
    ("card", r"(?<![A-Za-z0-9_.])[0-9](?:[ \-]?[0-9]){11,40}(?![A-Za-z0-9_])"),
    ("email", r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,24}"
              + _TOKEN_END),
)

# key=value, key: value, "key": "value", ?key=value: the value goes when the key is a secret.
_PAIR_HEAD = re.compile(
    r"(?P<lead>[?&;]?)[\"']?(?<![A-Za-z0-9_.\-\[\]%])"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-\[\]%]{0,63})[\"']?[ \t]*(?P<op>=|:)[ \t]*")
_PAIR_VALUE = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&\"')\]}]+")
# A value that is itself a key: '"name": ' after a quoted one, 'name: ' after a bare one.
_OP_AFTER_QUOTED = re.compile(r"[ \t]*[=:][ \t]*")
_GAP_AFTER_NAME = re.compile(r"[ \t]+")
_AUTH_SCHEME = re.compile(r"(?i)(?:bearer|basic)[ \t]+")

# Cheap pre-checks: text in which neither finds anything cannot match a built-in
# rule, so the rules' long alternation (slow: tried at every position) is skipped.
# Each rule's fixed part is listed after its first character, which the
# look-behind re-reads (one character class first keeps the scan fast); the
# credentials of a URL need its "@", so "://" alone is only a Slack webhook's.
_TRIGGER_WORDS = re.compile(
    r"[@:\-eBbAsrgx](?:(?<=@)|(?<=:)//hooks\.slack\.com/|(?<=-)----BEGIN|(?<=e)yJ|(?<=[Bb])(?:earer|asic)|(?<=B)(?:EARER|ASIC)"
    r"|(?<=A)(?:KIA|SIA|BIA|CCA|3T|Iza)|(?<=[sr])k[-_]|(?<=g)(?:h[pousr]_|ithub_pat_)|(?<=x)(?:ox|app))")
# A card number's 13+ digits: a digit and at least 11 more digits, spaces or dashes.
_TRIGGER_DIGITS = re.compile(r"[0-9][0-9 \-]{11,}")
# Redacted texts are remembered (values repeat: routes, user agents, messages).
_TEXT_CACHE_SIZE = 8192
_TEXT_CACHE_MAX_LEN = 512
_DIGITS = re.compile(r"[0-9]+")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Where a rule found a secret: start, end, the replacement, and whether the
# replacement hides all of it (an e-mail masked as "j***@example.com" does not).
_Span = tuple[int, int, str, bool]


def _rewrite(text: str, spans: list[_Span]) -> str:
    """``text`` with the spans replaced; where spans overlap, the replacement covers them all.

    A span inside another that hides everything takes that one's replacement;
    any other overlap becomes one [REDACTED] over both.
    """
    merged: list[list[Any]] = []
    for start, end, replacement, whole in sorted(spans, key=lambda span: (span[0], -span[1], not span[3])):
        if merged and start < merged[-1][1]:
            before = merged[-1]
            if not (end <= before[1] and before[3]):
                before[1], before[2], before[3] = max(end, before[1]), REDACTED, True
            continue
        merged.append([start, end, replacement, whole])
    out: list[str] = []
    last = 0
    for start, end, replacement, _ in merged:
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


# Rules whose handler may decline its match (returns None): the rest still get a look.
_MAY_DECLINE = frozenset({"auth", "card"})


_WORD = re.compile(r"[A-Za-z0-9_]*")


def _alternation(rules: Sequence[tuple[str, str]]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in rules))


def _card_span(run: str) -> tuple[int, int] | None:
    """Where a card number lies in a run of digit groups, if anywhere.

    A card starts at a group start with a digit 2-6 (every card network's
    first digit), ends at a group end, has 13-19 digits and passes Luhn.
    """
    groups = [(m.start(), m.end()) for m in _DIGITS.finditer(run)]
    for first in range(len(groups)):
        start = groups[first][0]
        if run[start] not in "23456":
            continue
        count = 0
        best = None
        for last in range(first, len(groups)):
            count += groups[last][1] - groups[last][0]
            if count > 19:
                break
            if count >= 13:
                digits = _DIGITS.findall(run[start:groups[last][1]])
                if luhn_valid("".join(digits)):
                    best = (start, groups[last][1])
        if best:
            return best
    return None


class Redactor:
    """The compiled rules. ``text``, ``value``, ``attributes`` and ``any_value`` never raise."""

    def __init__(self, extra_keys: Sequence[str] = (), extra_patterns: Sequence[str] = (),
                 emails: str = "mask") -> None:
        # The big patterns compile on first use, in the export thread: ~2 ms
        # that start-up would otherwise pay.
        self._extra_keys = [re.escape(normalise_key(k)) for k in extra_keys if normalise_key(k)]
        self.emails = emails
        self._rules = [r for r in _VALUE_RULES if emails != "keep" or r[0] != "email"]
        self._user: list[re.Pattern[str]] = []
        for pattern in extra_patterns:
            try:
                self._user.append(re.compile(pattern))
            except re.error as err:  # settings already reported it; never fail here
                _log.debug("otel-distro: redaction pattern %r skipped: %s", pattern, err)
        # A handler gives the part of its match to replace, or None to decline it.
        self._handlers: dict[str, Callable[[re.Match[str]], _Span | None]] = {
            "urlcred": lambda m: (m.end("urlcred_head"), m.end(), REDACTED, True),
            "auth": self._auth,
            "card": self._card,
            "email": self._email,
        }
        self._texts: dict[str, str | bool] = {}
        # Bumped by adopt_rules: caches of redacted output elsewhere compare it and start afresh.
        self.generation = 0
        self._is_secret_key = functools.lru_cache(maxsize=4096)(self._classify_key)
        self._is_secret_query = functools.lru_cache(maxsize=1024)(
            lambda name: bool(self._query_re.search(normalise_key(name))))

    def adopt_rules(self, other: Redactor) -> None:
        """Apply ``other``'s rules from now on (live configuration).

        One assignment, so a thread redacting meanwhile sees the old rules or the new ones, never a mix; every
        exporter, encoder and console that holds this redactor uses the new rules from its next record (those
        that keep redacted output compare ``generation`` and drop what they kept).
        """
        other.generation = self.generation + 1
        self.__dict__ = other.__dict__

    @functools.cached_property
    def _key_re(self) -> re.Pattern[str]:
        return _word_regex([*_KEY_WORDS, *self._extra_keys])

    @functools.cached_property
    def _query_re(self) -> re.Pattern[str]:
        return _word_regex([*_KEY_WORDS, *_QUERY_WORDS, *self._extra_keys])

    @functools.cached_property
    def _values(self) -> re.Pattern[str]:
        return _alternation(self._rules)

    @functools.cached_property
    def _after(self) -> dict[str, re.Pattern[str]]:
        # A handler may decline its match ("Bearer plain", a digit run that is
        # no card); the rules after it still get their turn at that position,
        # or "000000000000000000@example.com" would keep its address.
        rules = self._rules
        return {name: _alternation(rules[i + 1:]) for i, (name, _) in enumerate(rules)
                if name in _MAY_DECLINE and rules[i + 1:]}

    # -- keys
    def _classify_key(self, key: str) -> bool:
        return bool(self._key_re.search(normalise_key(key)))

    def is_secret_key(self, key: str) -> bool:
        return self._is_secret_key(key)

    # -- text
    def text(self, text: str) -> str:
        """``text`` with every secret replaced; the same object back when nothing matched."""
        done = self._texts.get(text)
        if done is not None:
            return text if done is True else done
        cleaned = self._text(text)
        if len(text) <= _TEXT_CACHE_MAX_LEN:
            if len(self._texts) >= _TEXT_CACHE_SIZE:
                self._texts.clear()
            self._texts[text] = True if cleaned == text else cleaned
        return cleaned

    def _text(self, text: str) -> str:
        if self._user:
            for pattern in self._user:
                text = pattern.sub(REDACTED, text)
        # Both rule sets judge the original text and their findings are merged:
        # neither can hide a secret from the other by rewriting first (a PEM
        # block after "password:", a key name inside "Bearer KEY=value").
        spans: list[_Span] = []
        if "=" in text or ":" in text:
            self._pair_spans(text, spans)  # first: where spans tie, a secret key's [REDACTED] wins
        if _TRIGGER_WORDS.search(text) or _TRIGGER_DIGITS.search(text):
            self._value_spans(text, spans)
        return _rewrite(text, spans) if spans else text

    def _value_spans(self, text: str, spans: list[_Span]) -> None:
        pos = 0
        while (m := self._values.search(text, pos)) is not None:
            span = self._claim(m)
            if span is None:
                # Every rule declined here. The rest of the match is still judged,
                # but no rule starts inside a word ("Bearer", a digit group), so
                # the search goes on from that first word's end.
                pos = _WORD.match(text, m.start() + 1).end()  # type: ignore[union-attr]
                continue
            spans.append(span)
            pos = m.end()

    def _claim(self, m: re.Match[str] | None) -> _Span | None:
        """The secret found where ``m`` starts; None when every rule declines it."""
        while m is not None:
            name = m.lastgroup or ""
            handler = self._handlers.get(name)
            if handler is None:
                return m.start(), m.end(), REDACTED, True
            span = handler(m)
            if span is not None:
                return span
            later = self._after.get(name)
            m = later.match(m.string, m.start()) if later is not None else None
        return None

    @staticmethod
    def _auth(m: re.Match[str]) -> _Span | None:
        value = m.group("auth_value")
        # "Bearer" followed by an ordinary word ("basic authentication") is prose.
        if len(value) < 16 or (value.isalpha() and value.islower()):
            return None
        return m.start("auth_value"), m.end(), REDACTED, True

    def _pair_spans(self, text: str, spans: list[_Span]) -> None:
        last = pos = 0
        while (m := _PAIR_HEAD.search(text, pos)) is not None:
            pos = m.end()
            if m.start() < last:  # it overlaps a value already taken: look again from that value's end
                pos = last
                continue
            name = m.group("name")
            secret = (self._is_secret_query(name) if m.group("lead") and m.group("op") == "="
                      else self._is_secret_key(name))
            if not secret:
                continue
            start = m.end()
            # 'secret: "password": "x"' or 'token: api_key: x': the value is
            # the next pair's key, so that pair's value goes too.
            while True:
                scheme = _AUTH_SCHEME.match(text, start)
                if scheme is not None:  # "Authorization: Bearer <token>": the scheme stays, the token goes
                    start = scheme.end()
                value = _PAIR_VALUE.match(text, start)
                if value is None or text.startswith(REDACTED, start):  # already replaced (a user pattern)
                    break
                found = value.group()
                quote = found[0] if found[0] in "\"'" else ""
                spans.append((start, value.end(), quote + REDACTED + quote, True))
                last = value.end()
                then = _OP_AFTER_QUOTED if quote else _GAP_AFTER_NAME if found[-1] == ":" else None
                chained = then.match(text, last) if then else None
                if chained is None:
                    break
                start = chained.end()

    @staticmethod
    def _card(m: re.Match[str]) -> _Span | None:
        run = m.group(0)
        found = _card_span(run)
        if found is None or [len(g) for g in run.split("-")] == [8, 4, 4, 4, 12]:
            return None  # no card, or a UUID that happens to be all digits
        return m.start() + found[0], m.start() + found[1], REDACTED, True

    def _email(self, m: re.Match[str]) -> _Span:
        address = m.group(0)
        local, _, domain = address.rpartition("@")
        if self.emails == "hash":
            digest = hashlib.sha256(address.lower().encode()).hexdigest()[:16]
            return m.start(), m.end(), f"[email:{digest}]", True
        return m.start(), m.end(), f"{local[:1]}***@{domain}", False

    # -- values
    def value(self, key: str | None, value: Any) -> Any:
        """One attribute value, judged by its key and its content."""
        if key is not None and value is not None and not isinstance(value, bool) \
                and self._is_secret_key(key):
            if isinstance(value, (list, tuple)):
                return [REDACTED for _ in value]
            return REDACTED
        return self.any_value(value)

    def any_value(self, value: Any) -> Any:
        """A log body or attribute value: text, numbers, bytes, lists and maps."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            if 10**12 <= abs(value) < 10**19:
                digits = str(abs(value))
                if digits[0] in "23456" and luhn_valid(digits):
                    return REDACTED
            return value
        if isinstance(value, (bytes, bytearray)):
            text = bytes(value).decode("utf-8", "replace")
            cleaned = self.text(text)
            return value if cleaned == text else cleaned
        if isinstance(value, Mapping):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            cleaned = [self.any_value(v) for v in value]
            return cleaned if any(a is not b for a, b in zip(cleaned, value, strict=True)) else value
        return value

    def attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A redacted copy of an attribute map (None stays None)."""
        if attributes is None:
            return None
        return {k: self.value(k, v) for k, v in attributes.items()}

    def resource(self, resource: Any) -> Any:
        """A redacted copy of a Resource (its constructor re-validates the redacted values)."""
        from opentelemetry.sdk.resources import Resource

        return Resource(self.attributes(resource.attributes) or {}, resource.schema_url)


@functools.lru_cache(maxsize=8)
def _cached(enabled: bool, keys: tuple[str, ...], patterns: tuple[str, ...], emails: str) -> Redactor | None:
    return Redactor(keys, patterns, emails) if enabled else None


def from_settings(settings: Any) -> Redactor | None:
    """The redactor for these settings, or None when OTEL_DISTRO_REDACT=false."""
    return _cached(settings.redact, tuple(settings.redact_keys), tuple(settings.redact_patterns),
                   settings.redact_emails)
