"""Writes pii_corpus.jsonl: labelled sentences for measuring the redactor's precision and recall.

Deterministic (seeded). Positives are valid by construction (Luhn, IBAN mod-97, SSN issuing
rules); negatives are look-alikes a naive detector would flag: dates, times, versions, Luhn-failing
card numbers, IBANs with a wrong checksum, invalid SSNs, MAC addresses, ISBNs, order numbers.
Run: python3 make_pii_corpus.py > pii_corpus.jsonl
"""
import json, random

rnd = random.Random(20261128)
FIRST = ["ann", "bob", "chen", "dana", "eli", "fatima", "goran", "hana", "ivan", "jules", "kofi", "lena"]
LAST = ["smith", "okafor", "muller", "rossi", "tanaka", "silva", "novak", "haddad", "berg", "kim"]
DOMAINS = ["example.com", "corp.io", "mail.example.co.uk", "nvidia.com", "uni-bonn.de", "acme.org"]

def email():
    sep = rnd.choice([".", "_", "", "+tag."])
    e = f"{rnd.choice(FIRST)}{sep}{rnd.choice(LAST)}@{rnd.choice(DOMAINS)}"
    return e if rnd.random() < 0.8 else e.capitalize()

def luhn_complete(prefix, length):
    digits = [int(c) for c in prefix] + [rnd.randrange(10) for _ in range(length - len(prefix) - 1)]
    for check in range(10):
        ds = digits + [check]
        s = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 1 else d for i, d in enumerate(reversed(ds)))
        if s % 10 == 0:
            return "".join(map(str, ds))

def fmt_card(n):
    style = rnd.choice(["space", "dash", "none"])
    if len(n) == 15:
        parts = [n[:4], n[4:10], n[10:]]
    else:
        parts = [n[i:i + 4] for i in range(0, len(n), 4)]
    return {"space": " ", "dash": "-", "none": ""}[style].join(parts)

def card():
    prefix, length = rnd.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16), ("4", 13)])
    return fmt_card(luhn_complete(prefix, length))

def bad_card():
    n = luhn_complete("4", 16)
    n = n[:-1] + str((int(n[-1]) + rnd.randrange(1, 10)) % 10)
    return fmt_card(n)

def ssn():
    area = rnd.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rnd.randrange(1, 100):02d}-{rnd.randrange(1, 10000):04d}"

def bad_ssn():
    return rnd.choice([f"000-{rnd.randrange(1,100):02d}-{rnd.randrange(1,10000):04d}",
                       f"666-{rnd.randrange(1,100):02d}-{rnd.randrange(1,10000):04d}",
                       f"{rnd.randrange(900,1000)}-{rnd.randrange(1,100):02d}-{rnd.randrange(1,10000):04d}",
                       f"{rnd.randrange(1,900):03d}-00-{rnd.randrange(1,10000):04d}"])

def phone():
    kind = rnd.randrange(7)
    d = lambda n: "".join(str(rnd.randrange(10)) for _ in range(n))
    area = str(rnd.randrange(201, 990))
    return [
        f"+1 {area} 555 {d(4)}",
        f"+1{area}555{d(4)}",
        f"({area}) 555-{d(4)}",
        f"{area}-555-{d(4)}",
        f"+44 20 7946 {d(4)}",
        f"020 7946 {d(4)}",
        f"+49 30 {d(8)}",
    ][kind]

def ipv4():
    return ".".join(str(rnd.randrange(1, 255)) for _ in range(4))

def ipv6():
    g = lambda: format(rnd.randrange(1, 0xffff), "x")
    return rnd.choice([f"2001:db8::{g()}:{g()}", f"fe80::{g()}:{g()}:{g()}:{g()}",
                       ":".join(g() for _ in range(8)), f"2001:db8:{g()}::{g()}"])

IBAN_LEN = {"DE": 18, "GB": 18, "FR": 23, "NL": 14, "ES": 20}

def iban_check(country, bban):
    s = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in s)
    return 98 - int(num) % 97

def iban(valid=True):
    country = rnd.choice(list(IBAN_LEN))
    if country == "GB":
        bban = "WEST" + "".join(str(rnd.randrange(10)) for _ in range(14))
    elif country == "NL":
        bban = "ABNA" + "".join(str(rnd.randrange(10)) for _ in range(10))
    else:
        bban = "".join(str(rnd.randrange(10)) for _ in range(IBAN_LEN[country]))
    check = iban_check(country, bban)
    if not valid:
        check = (check + rnd.randrange(1, 90)) % 100
    s = f"{country}{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4)) if rnd.random() < 0.6 else s

POS = {"email": email, "card": card, "ssn": ssn, "phone": phone, "ipv4": ipv4, "ipv6": ipv6, "iban": iban}
TEMPLATES = {
    "email": ["Please reply to {} by Friday.", "Contact: {}", "The invoice went to <{}> yesterday.",
              "Profile: https://crm.example.com/u?email={}&tab=1"],
    "card": ["Charge card {} for the renewal.", "Card number: {}, exp 09/27.", "She paid with {} on Monday."],
    "ssn": ["SSN {} is on the form.", "Applicant social security number: {}."],
    "phone": ["Call me at {} after six.", "Support line: {}", "Phone {} (mobile)."],
    "ipv4": ["Login from {} was blocked.", "Server at {}:8443 is down."],
    "ipv6": ["The request came from {} again.", "Bind to [{}]:443 for the gateway."],
    "iban": ["Wire the refund to {} please.", "IBAN: {}"],
}
NEG = [lambda: f"Meeting on {rnd.randrange(2020,2027)}-{rnd.randrange(1,13):02d}-{rnd.randrange(1,29):02d} at {rnd.randrange(8,18)}:{rnd.randrange(0,60):02d}:{rnd.randrange(0,60):02d}.",
       lambda: f"Released on {rnd.randrange(1,29):02d}.{rnd.randrange(1,13):02d}.{rnd.randrange(2020,2027)} as version {rnd.randrange(1,9)}.{rnd.randrange(0,20)}.{rnd.randrange(0,30)}.",
       lambda: f"Due {rnd.randrange(1,13):02d}/{rnd.randrange(1,29):02d}/{rnd.randrange(2020,2027)}, order #{rnd.randrange(10000,99999)}.",
       lambda: f"Card {bad_card()} was declined as invalid.",
       lambda: f"The IBAN {iban(valid=False)} failed validation.",
       lambda: f"Reference {bad_ssn()} is not an SSN.",
       lambda: f"MAC address {':'.join(format(rnd.randrange(256), '02x') for _ in range(6))} joined.",
       lambda: f"ISBN 978-{rnd.randrange(0,10)}-{rnd.randrange(10,99)}-{rnd.randrange(100000,999999)}-{rnd.randrange(0,10)} is out of print.",
       lambda: f"Total ${rnd.randrange(1,99)},{rnd.randrange(100,999)}.{rnd.randrange(10,99)} for {rnd.randrange(2,60)} seats, room {rnd.randrange(100,999)}.",
       lambda: f"Latency p99 was {rnd.randrange(100,999)} ms over {rnd.randrange(1000,99999)} requests at 12:{rnd.randrange(10,59)}."]

lines = []
for kind, make in POS.items():
    for _ in range(24):
        v = make()
        lines.append({"text": rnd.choice(TEMPLATES[kind]).format(v), "entities": [{"kind": kind, "text": v}]})
for _ in range(40):  # mixed sentences
    a, b = rnd.sample(list(POS), 2)
    va, vb = POS[a](), POS[b]()
    lines.append({"text": f"Reach {va} or, failing that, {vb}.", "entities": [{"kind": a, "text": va}, {"kind": b, "text": vb}]})
for _ in range(8):
    for neg in NEG:
        lines.append({"text": neg(), "entities": []})
rnd.shuffle(lines)
for l in lines:
    print(json.dumps(l, ensure_ascii=False))
