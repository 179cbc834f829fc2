"""The hostile-input corpus: every payload here must be refused with a 4xx, never a 5xx, and
never make Tessera connect anywhere but a vetted public address."""

# --- JSON bodies (raw text, posted as application/json) -------------------------------------
NESTED_JSON = [
    "[" * 10_000 + "]" * 10_000,                       # RecursionError in the C scanner
    '{"a":' * 10_000 + "1" + "}" * 10_000,
    "[" * 33 + "]" * 33,                               # one level beyond the limit
    '{"recipient": ' + "[" * 500 + "]" * 500 + "}",    # parses, then refused by depth
]
HUGE_NUMBERS = [
    "1e999999",                                        # float('inf') without the guard
    "-1e999999",
    '{"limit": 1e400}',
    "1" * 100_000,                                     # beyond int max str digits (4300)
    "9" * 4000,                                        # under Python's cap, beyond 64 bits
    '{"recipient": {"id": ' + "7" * 30 + "}}",
    "NaN",
    "-Infinity",
]
MALFORMED_JSON = ["{", '{"a": "\\ud800"}x', "\xff\xfe", '{"a": 1,}']

# --- webhook URLs: refused at subscription and at delivery -----------------------------------
# Loopback forms decide without DNS (numeric hosts are parsed as inet_aton would).
REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",         # cloud metadata (and http)
    "https://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1/admin/",
    "https://127.1/",
    "https://2130706433/",                              # decimal 127.0.0.1
    "https://0x7f000001/",                              # hex
    "https://0177.0.0.1/",                              # octal
    "https://0x7f.0.0.1/",
    "https://0/",
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:127.0.0.1]/",                      # IPv4-mapped IPv6
    "https://[::ffff:7f00:1]/",
    "https://[0:0:0:0:0:ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",                    # NAT64 of 169.254.169.254
    "https://[2002:7f00:1::]/",                         # 6to4 of 127.0.0.1
    "https://[fe80::1]/",                               # link-local
    "https://[fc00::1]/",                               # unique local
    "https://[ff02::1]/",                               # multicast
    "https://10.0.0.1/",
    "https://172.16.5.4/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",                              # carrier-grade NAT
    "https://224.0.0.1/",                               # multicast
    "https://240.0.0.1/",                               # reserved
    "https://255.255.255.255/",
    "https://198.18.0.1/",                              # benchmarking
    "https://localhost/",
    "https://LOCALHOST./",
    "https://user:secret@hooks.example.com/",           # credentials
    "https://user@hooks.example.com/",
    "http://hooks.example.com/",                        # plain http to a public host
    "ftp://hooks.example.com/",
    "https:///nohost",
    "https://hooks.example.com:0/",
]
# DNS names and what the stubbed resolver answers for them (never sent to real DNS).
STUB_DNS = {
    "hooks.example.com": ["93.184.215.14"],
    "dual.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "localtest.me": ["127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "intranet.example.com": ["10.1.2.3"],
    "mixed.example.com": ["93.184.215.14", "192.168.0.10"],   # ANY internal address refuses
    "v6-loop.example.com": ["::1"],
    "v6-mapped.example.com": ["::ffff:10.0.0.1"],
}
REFUSED_BY_DNS = [
    "https://localtest.me/hook",
    "https://metadata.example.com/latest/meta-data/",
    "https://intranet.example.com/",
    "https://mixed.example.com/",
    "https://v6-loop.example.com/",
    "https://v6-mapped.example.com/",
]
ACCEPTED_URLS = ["https://hooks.example.com/tessera", "https://dual.example.com:8443/x?y=1"]
