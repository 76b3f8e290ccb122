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

import dataclasses
import functools
import hashlib
import itertools
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
    r"secret_key", r"pwd", r"pass",
)
# Query parameters whose value is a credential although the name is not one above.
_QUERY_WORDS = (r"sig", r"signature", r"key", r"code", r"x_amz_credential", r"x_amz_signature",
                r"auth")

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


@dataclasses.dataclass(frozen=True)
class ValueRule:
    """A kind of secret found by its content.

    Every text the rule matches contains one of ``triggers`` (fixed texts) or,
    for a rule without one, a match of ``trigger_pattern``; a match starts at
    most ``reach`` characters before that trigger. The rule only runs on text
    holding a trigger, and the search skips ahead to ``reach`` before the next
    one (tests/test_redaction_rules.py checks both against running every rule
    everywhere).

    Every pattern runs in time linear in the text: each quantifier is bounded,
    possessive, or scans a run whose only start is the run's first character.
    """

    name: str
    pattern: str
    triggers: tuple[str, ...]
    reach: int = 0
    trigger_pattern: str = ""

    def finders(self) -> list[Callable[[str, int], int]]:
        """For each trigger: where it next starts in ``text`` at or after ``pos`` (-1: nowhere)."""
        if self.trigger_pattern:
            found = re.compile(self.trigger_pattern).search
            return [lambda text, pos: m.start() if (m := found(text, pos)) is not None else -1]
        return [functools.partial(_find, trigger) for trigger in self.triggers]


def _find(trigger: str, text: str, pos: int) -> int:
    return text.find(trigger, pos)


# The first that matches at the leftmost position wins, so the order matters
# (a URL's credentials before an e-mail).
VALUE_RULES: tuple[ValueRule, ...] = (
    ValueRule("pem", r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)",
              ("-----BEGIN",)),
    ValueRule("urlcred", r"(?<![A-Za-z0-9+.\-])(?P<urlcred_head>[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s/?#@:]*+:)"
                         r"[^\s/?#@]++(?=@)", ("://",), reach=32),
    ValueRule("slackhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]++",
              ("hooks.slack.com/",), reach=len("https://")),
    ValueRule("auth", r"\b(?P<auth_scheme>[Bb]earer|BEARER|[Bb]asic|BASIC)(?P<auth_gap>\s++)"
                      r"(?P<auth_value>[A-Za-z0-9\-._~+/]++=*+)",
              ("Bearer", "bearer", "BEARER", "Basic", "basic", "BASIC")),
    ValueRule("jwt", r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{4,}+\.[A-Za-z0-9_\-]{4,}+\.[A-Za-z0-9_\-]*+", ("eyJ",)),
    ValueRule("aws", _TOKEN_START + r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}" + _TOKEN_END,
              ("AKIA", "ASIA", "ABIA", "ACCA", "A3T")),
    ValueRule("sk", r"(?<![A-Za-z0-9_\-])(?:sk|rk)[-_][A-Za-z0-9_\-]{20,}+", ("sk-", "sk_", "rk-", "rk_")),
    ValueRule("google", _TOKEN_START + r"AIza[0-9A-Za-z_\-]{35}", ("AIza",)),
    ValueRule("github", _TOKEN_START + r"(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})",
              ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    ValueRule("slack", _TOKEN_START + r"(?:xox[abposr]|xapp)-[A-Za-z0-9\-]{10,}+", ("xox", "xapp-")),
    # A whole run of digit groups (one start per run); the handler finds the cards in it.
    # No fixed text: 12 characters of digits, spaces and dashes, from the run's start.
    ValueRule("card", r"(?<![A-Za-z0-9_.])[0-9](?:[ \-]?[0-9])*+", (), trigger_pattern=r"[0-9][0-9 \-]{11}"),
    ValueRule("email", r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,24}"
                       + _TOKEN_END, ("@",), reach=64),
)
_DIGIT_CHARS = "0123456789"
# Up to this length a text is first checked by one pattern for any trigger (cheaper than the look-ups
# of each trigger's first character, which are cheaper for long texts).
_GATED_LENGTH = 2048


# key=value, key: value, "key": "value", ?key=value: the value goes when the key is a secret.
_PAIR_HEAD = re.compile(
    r"(?P<lead>[?&;]?)[\"']?(?<![A-Za-z0-9_.\-\[\]%])"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-\[\]%]{0,63})[\"']?[ \t]*+(?P<op>=|:)[ \t]*+")
# A quoted value runs to its closing quote (backslash escapes included) or the line's end.
_QUOTED = r"\"(?:[^\"\\\n]++|\\.)*+\"?|'(?:[^'\\\n]++|\\.)*+'?"
# After "=": one word.
_PAIR_WORD = re.compile(_QUOTED + r"|[^\s,;&\"')\]}]++")
# After ":" (headers, YAML, prose): the rest of the line, up to the next ", name:" / "; name=" pair.
_NEXT_PAIR = r"[ \t]*+[\"']?[A-Za-z_][A-Za-z0-9_.\-\[\]%]{0,63}[\"']?[ \t]*+[=:]"
_PAIR_LINE = re.compile(_QUOTED + r"|(?:[^\r\n,;&]++|[,;&](?!" + _NEXT_PAIR + r"))++")
# A value that is itself a key: '"name": ' after a quoted one, 'name: ' after a bare word.
_OP_AFTER_QUOTED = re.compile(r"[ \t]*+[=:][ \t]*+")
_GAP_AFTER_NAME = re.compile(r"[ \t]++")
_AUTH_SCHEME = re.compile(r"(?i)(?:bearer|basic|token|digest)[ \t]++(?=\S)")

# Redacted texts are remembered (values repeat: routes, user agents, messages).
_TEXT_CACHE_SIZE = 8192
_TEXT_CACHE_MAX_LEN = 512
_DIGITS = re.compile(r"[0-9]+")
# Read backwards from a cut: the word it went through, and digit groups before it (part of a card number).
_CUT_WORD = re.compile(r"\S*+[0-9 \-]*+")
DEFAULT_MAX_LENGTH = 32_768


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


_WORD = re.compile(r"[A-Za-z0-9_]*")


def _alternation(rules: Sequence[ValueRule]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<{rule.name}>{rule.pattern})" for rule in rules))


_AS_IS = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))  # 2d, less 9 past 9


def _luhn_sums(digits: str) -> tuple[list[list[int]], list[list[int]]]:
    """Prefix sums for Luhn checks of any window in O(1) (built in C: translate, slices, accumulate).

    ``as_is[p][i]``: digits before ``i`` at an index of parity p, as they are;
    ``doubled[p][i]``: the same digits doubled (minus 9 past 9).
    """
    raw = digits.encode()
    sums: list[list[list[int]]] = []
    for table in (_AS_IS, _DOUBLED):
        values = raw.translate(table)
        per_parity = []
        for parity in (0, 1):
            only = bytearray(len(values))
            only[parity::2] = values[parity::2]
            per_parity.append(list(itertools.accumulate(only, initial=0)))
        sums.append(per_parity)
    return sums[0], sums[1]


def card_spans(run: str, glued_end: bool = False) -> list[tuple[int, int]]:
    """Where card numbers lie in a run of digit groups (separated by one space or dash).

    A card starts at a group start with a digit 2-6 (every card network's
    first digit), ends at a group end (not the run's end when ``glued_end``:
    a word goes on there), has 13-19 digits and passes Luhn; from each start
    the longest. Linear in the run: each window's Luhn sum comes from prefix sums.
    """
    groups = [m.span() for m in _DIGITS.finditer(run)]
    digits = "".join(run[a:b] for a, b in groups)
    plain, doubled = _luhn_sums(digits)
    offsets = [0]
    for a, b in groups:
        offsets.append(offsets[-1] + b - a)
    found: list[tuple[int, int]] = []
    first = 0
    last_group = len(groups) - 1
    while first <= last_group:
        start = groups[first][0]
        best = None
        if run[start] in "23456":
            a = offsets[first]
            for last in range(first, last_group + 1):
                b = offsets[last + 1]
                if b - a > 19:
                    break
                if b - a >= 13 and not (glued_end and last == last_group):
                    p = (b - 1) & 1  # the last digit's parity: those digits count as they are
                    total = plain[p][b] - plain[p][a] + doubled[1 - p][b] - doubled[1 - p][a]
                    if total % 10 == 0:
                        best = last
        if best is None:
            first += 1
            continue
        found.append((start, groups[best][1]))
        first = best + 1
    return found


_UUID_GROUPS = [8, 4, 4, 4, 12]


class Redactor:
    """The compiled rules. ``text``, ``name``, ``key``, ``value``, ``attributes`` and ``any_value`` never raise.

    ``max_length``: characters of one text the rules read; what lies past it
    (and the word the cut goes through) is replaced by ``[TRUNCATED n characters]``.
    """

    # Off only in tests: the results with and without the pre-check must be the same.
    _prefiltered = True

    def __init__(self, extra_keys: Sequence[str] = (), extra_patterns: Sequence[str] = (),
                 emails: str = "mask", max_length: int = DEFAULT_MAX_LENGTH) -> None:
        # The big patterns compile on first use, in the export thread: ~2 ms
        # that start-up would otherwise pay.
        self._extra_keys = [re.escape(normalise_key(k)) for k in extra_keys if normalise_key(k)]
        self.emails = emails
        self.max_length = max_length
        self.rules = tuple(r for r in VALUE_RULES if emails != "keep" or r.name != "email")
        self._user: list[re.Pattern[str]] = []
        for pattern in extra_patterns:
            try:
                self._user.append(re.compile(pattern))
            except re.error as err:  # settings already reported it; never fail here
                _log.debug("otel-distro: redaction pattern %r skipped: %s", pattern, err)
        # A handler gives the parts of its match to replace; none declines the match.
        self._handlers: dict[str, Callable[[re.Match[str]], list[_Span]]] = {
            "urlcred": lambda m: [(m.end("urlcred_head"), m.end(), REDACTED, True)],
            "auth": self._auth,
            "card": self._card,
            "email": self._email,
        }
        self._texts: dict[str, str | bool] = {}
        self._keys: dict[str, str] = {}
        # Bumped by adopt_rules: caches of redacted output elsewhere compare it and start afresh.
        self.generation = 0
        self._is_secret_key = functools.lru_cache(maxsize=4096)(self._classify_key)
        self._is_secret_query = functools.lru_cache(maxsize=1024)(
            lambda name: bool(self._query_re.search(normalise_key(name))))
        self._alternations: dict[frozenset[str], tuple[re.Pattern[str], dict[str, re.Pattern[str]]]] = {}

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
    def _finders(self) -> dict[str, list[tuple[int, Callable[[str, int], int]]]]:
        return {rule.name: [(rule.reach, find) for find in rule.finders()] for rule in self.rules}

    def _compiled(self, names: frozenset[str]) -> tuple[re.Pattern[str], dict[str, re.Pattern[str]]]:
        """The alternation of these rules, and for each that may decline, of the rules after it."""
        hit = self._alternations.get(names)
        if hit is None:
            rules = [rule for rule in self.rules if rule.name in names]
            after = {rule.name: _alternation(rules[i + 1:]) for i, rule in enumerate(rules)
                     if rule.name in self._handlers and rules[i + 1:]}
            hit = self._alternations[names] = (_alternation(rules), after)
        return hit

    @staticmethod
    def default() -> Redactor:
        """The built-in rules, shared (for output the distro makes outside a configured pipeline)."""
        return _cached(True, (), (), "mask", DEFAULT_MAX_LENGTH)  # type: ignore[return-value]

    # -- keys
    def _classify_key(self, key: str) -> bool:
        return bool(self._key_re.search(normalise_key(key[:256])))

    def is_secret_key(self, key: str) -> bool:
        return self._is_secret_key(key)

    def key(self, key: str) -> str:
        """An attribute or extra key as it may be exported: a secret written into the key itself is redacted.

        (``Bearer abc…`` or ``login password=hunter2`` used as a key.) The value
        is judged by the original key: see :meth:`value`.
        """
        done = self._keys.get(key)
        if done is None:
            done = self.text(key)
            if len(self._keys) >= _TEXT_CACHE_SIZE:
                self._keys.clear()
            self._keys[key] = done
        return done

    # -- text
    def name(self, name: str) -> str:
        """A span, event, scope or logger name as it may be exported: the text rules, remembered."""
        return self.text(name)

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
        tail = ""
        if len(text) > self.max_length:
            text, tail = self._truncated(text)
        for pattern in self._user:
            text = pattern.sub(REDACTED, text)
        # Both rule sets judge the original text and their findings are merged:
        # neither can hide a secret from the other by rewriting first (a PEM
        # block after "password:", a key name inside "Bearer KEY=value").
        spans: list[_Span] = []
        if "=" in text or ":" in text:
            self._pair_spans(text, spans)  # first: where spans tie, a secret key's [REDACTED] wins
        triggered = self._triggered(text)
        if triggered:
            self._value_spans(text, spans, triggered)
        return (_rewrite(text, spans) if spans else text) + tail

    @functools.cached_property
    def _gates(self) -> list[re.Pattern[str]]:
        """Patterns finding any trigger: one for the fixed texts, and each trigger pattern.

        The fixed texts are grouped by first character: branches that each start
        with their own character are what the regular expression engine scans
        for fastest (it skips to those characters, and past a branch whose
        character is not the one at hand).
        """
        rests: dict[str, set[str]] = {}
        for rule in self.rules:
            for trigger in rule.triggers:
                rests.setdefault(trigger[0], set()).add(trigger[1:])
        branches = [re.escape(first) + ("" if "" in ends else "(?:" + "|".join(map(re.escape, sorted(ends))) + ")")
                    for first, ends in sorted(rests.items())]
        return [re.compile("|".join(branches)),
                *(re.compile(rule.trigger_pattern) for rule in self.rules if rule.trigger_pattern)]

    def _triggered(self, text: str) -> frozenset[str]:
        """The rules whose triggers occur in ``text`` (all of them with the pre-check off)."""
        if not self._prefiltered:
            return frozenset(rule.name for rule in self.rules)
        # Most texts are short and hold no trigger: one scan in C says so.
        if len(text) <= _GATED_LENGTH and not any(gate.search(text) for gate in self._gates):
            return frozenset()
        # A one-character scan (memchr) is many times faster than a longer one: the
        # triggers' first characters are looked for first, each once.
        present: dict[str, bool] = {}

        def has(trigger: str) -> bool:
            first = present.get(trigger[0])
            if first is None:
                first = present[trigger[0]] = trigger[0] in text
            return first and (len(trigger) == 1 or trigger in text)

        digits = any(has(d) for d in _DIGIT_CHARS)
        return frozenset(rule.name for rule in self.rules
                         if any(has(t) for t in rule.triggers)
                         or (rule.trigger_pattern and digits and self._finders[rule.name][0][1](text, 0) >= 0))

    def _truncated(self, text: str) -> tuple[str, str]:
        """The first ``max_length`` characters less the word the cut went through, and the marker for the rest."""
        head = text[:self.max_length]
        cut = _CUT_WORD.match(head[::-1])
        kept = head[:len(head) - cut.end()] if cut else head
        return kept, f"[TRUNCATED {len(text) - len(kept)} characters]"

    def _value_spans(self, text: str, spans: list[_Span], names: frozenset[str]) -> None:
        values, after = self._compiled(names)
        skip = self._skipper(text, names) if self._prefiltered else (lambda pos: pos)
        pos = 0
        while (pos := skip(pos)) >= 0 and (m := values.search(text, pos)) is not None:
            found, resume = self._claim(m, after)
            if not found:
                # Every rule declined here. The rest of the match is still judged,
                # but no rule starts inside a word ("Bearer", a digit group), so
                # the search goes on from that first word's end.
                pos = max(resume, _WORD.match(text, m.start() + 1).end())  # type: ignore[union-attr]
                continue
            spans.extend(found)
            pos = max(m.end(), resume)

    def _skipper(self, text: str, names: frozenset[str]) -> Callable[[int], int]:
        """Where a search from ``pos`` may first find a match: ``reach`` before the next trigger (-1: nowhere).

        Each trigger's next place is looked up again only once the search has
        passed it, so the look-ups of one trigger together read the text once.
        """
        finders = [finder for name in names for finder in self._finders[name]]
        nexts = [-2] * len(finders)  # -2: not looked up yet; -1: no trigger left

        def skip(pos: int) -> int:
            first: int | None = None
            for i, (reach, find) in enumerate(finders):
                at = nexts[i]
                if at != -1 and at < pos:
                    at = nexts[i] = find(text, pos)
                if at >= 0 and (first is None or at - reach < first):
                    first = at - reach
            return -1 if first is None else max(first, pos)

        return skip

    def _claim(self, m: re.Match[str] | None, after: dict[str, re.Pattern[str]]) -> tuple[list[_Span], int]:
        """The secrets found where ``m`` starts (none when every rule declines), and where to search on."""
        resume = 0
        while m is not None:
            name = m.lastgroup or ""
            handler = self._handlers.get(name)
            if handler is None:
                return [(m.start(), m.end(), REDACTED, True)], resume
            found = handler(m)
            if found:
                return found, resume
            if name == "card":
                # A run of digit groups without a card: only its last group may start
                # another secret (an e-mail's local part); no need to read the run again.
                resume = max(resume, m.start() + m.group().rfind(" ") + 1, m.start() + m.group().rfind("-") + 1)
            later = after.get(name)
            m = later.match(m.string, m.start()) if later is not None else None
        return [], resume

    @staticmethod
    def _auth(m: re.Match[str]) -> list[_Span]:
        value = m.group("auth_value")
        # "Bearer" followed by an ordinary word ("basic authentication") is prose.
        if len(value) < 16 or (value.isalpha() and value.islower()):
            return []
        return [(m.start("auth_value"), m.end(), REDACTED, True)]

    def _pair_spans(self, text: str, spans: list[_Span]) -> None:
        last = pos = 0
        while (m := _PAIR_HEAD.search(text, pos)) is not None:
            pos = m.end()
            if m.start() < last:  # it overlaps a value already taken: look again from that value's end
                pos = last
                continue
            name = m.group("name")
            query = bool(m.group("lead")) and m.group("op") == "="
            secret = self._is_secret_query(name) if query else self._is_secret_key(name)
            if not secret:
                continue
            start = m.end()
            value_re = _PAIR_LINE if m.group("op") == ":" else _PAIR_WORD
            # 'secret: "password": "x"' or 'token=api_key: x': the value is
            # the next pair's key, so that pair's value goes too.
            while True:
                scheme = _AUTH_SCHEME.match(text, start)
                if scheme is not None:  # "Authorization: Bearer <token>": the scheme stays, the token goes
                    start = scheme.end()
                value = value_re.match(text, start)
                if value is None or text.startswith(REDACTED, start):  # already replaced (a user pattern)
                    break
                found = value.group()
                quote = found[0] if found[0] in "\"'" else ""
                closed = quote and len(found) > 1 and found[-1] == quote
                spans.append((start, value.end(), quote + REDACTED + (quote if closed else ""), True))
                last = value.end()
                then = _OP_AFTER_QUOTED if quote else _GAP_AFTER_NAME if found[-1] == ":" else None
                chained = then.match(text, last) if then else None
                if chained is None:
                    break
                start = chained.end()
                value_re = _PAIR_LINE if ":" in chained.group() or found[-1] == ":" else _PAIR_WORD

    @staticmethod
    def _card(m: re.Match[str]) -> list[_Span]:
        run = m.group(0)
        if [len(g) for g in run.split("-")] == _UUID_GROUPS:
            return []  # a UUID that happens to be all digits
        text = m.string
        glued = m.end() < len(text) and (text[m.end()].isalnum() or text[m.end()] == "_")
        offset = m.start()
        return [(offset + a, offset + b, REDACTED, True) for a, b in card_spans(run, glued)]

    def _email(self, m: re.Match[str]) -> list[_Span]:
        address = m.group(0)
        local, _, domain = address.rpartition("@")
        if self.emails == "hash":
            digest = hashlib.sha256(address.lower().encode()).hexdigest()[:16]
            return [(m.start(), m.end(), f"[email:{digest}]", True)]
        return [(m.start(), m.end(), f"{local[:1]}***@{domain}", False)]

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
            return {self.key(str(k)): self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            cleaned = [self.any_value(v) for v in value]
            return cleaned if any(a is not b for a, b in zip(cleaned, value, strict=True)) else value
        return value

    def attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A redacted copy of an attribute map, keys included (None stays None)."""
        if attributes is None:
            return None
        return {self.key(k): self.value(k, v) for k, v in attributes.items()}

    def resource(self, resource: Any) -> Any:
        """A redacted copy of a Resource (its constructor re-validates the redacted values)."""
        from opentelemetry.sdk.resources import Resource

        return Resource(self.attributes(resource.attributes) or {}, resource.schema_url)

    def scope(self, scope: Any) -> Any:
        """A redacted copy of an InstrumentationScope (a logger's name is its name), or the scope itself."""
        if scope is None:
            return None
        name = self.name(scope.name)
        attributes = self.attributes(scope.attributes) if scope.attributes else scope.attributes
        if name is scope.name and attributes == scope.attributes:
            return scope
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        return InstrumentationScope(name, scope.version, scope.schema_url, attributes)


@functools.lru_cache(maxsize=8)
def _cached(enabled: bool, keys: tuple[str, ...], patterns: tuple[str, ...], emails: str,
            max_length: int) -> Redactor | None:
    return Redactor(keys, patterns, emails, max_length) if enabled else None


def from_settings(settings: Any) -> Redactor | None:
    """The redactor for these settings, or None when OTEL_DISTRO_REDACT=false."""
    return _cached(settings.redact, tuple(settings.redact_keys), tuple(settings.redact_patterns),
                   settings.redact_emails, settings.redact_max_length)
