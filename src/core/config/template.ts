/**
 * The commented config `autoport init` writes. It loads as it stands (tests keep it that
 * way), so the first `autoport check` talks about servers, not about YAML.
 */
export interface TemplateOptions {
  /** state file as written into the template (absolute, or relative to the config) */
  state: string;
  /** key file as written into the template */
  keyFile: string;
}

export function renderTemplate(opts: TemplateOptions): string {
  return `# AutoPort configuration. Relative paths are relative to this file's folder.
# After editing, run \`autoport check\`: it connects to every server below and reports
# TLS, greetings and capabilities without changing anything.
#
# Server addresses are URLs:
#   imap://host:143?tls=starttls   imaps://host:993      (IMAP, STARTTLS or implicit TLS)
#   pop3://host:110?tls=starttls   pop3s://host:995      (POP3)
#   smtp://host:25                 submission://host:587   smtps://host:465   lmtp://host:24
# Options after "?": tls=starttls|implicit|none (none only to loopback unless force-plain=true),
#   verify=false (skip certificate checks: test servers only), servername=<name on the certificate>.
# A server with a private CA: start autoport with NODE_EXTRA_CA_CERTS=/path/to/ca.pem.

# The old server, where accounts are now. AutoPort checks first logins against it and
# copies from it. It is never changed.
source:
  imap: imap://old-mail.example.org:143?tls=starttls
  # POP3, for POP3 clients of accounts not moved yet (and for copying when useImap is false).
  pop3: pop3s://old-mail.example.org:995
  # Where mail for accounts not moved yet is relayed (the source's MX service).
  smtp: smtp://old-mail.example.org:25
  # Authenticated submission of users not moved yet.
  # submission: submission://old-mail.example.org:587
  # Copy over IMAP (default when imap is set); false copies the inbox over POP3.
  # useImap: true

# The new server, where accounts go. AutoPort creates each account there with the
# user's own password, copies the mail in, then sends the user's logins there.
destination:
  imap: imap://new-mail.example.org:143?tls=starttls
  # Where mail for moved accounts is delivered (LMTP or SMTP).
  smtp: lmtp://new-mail.example.org:24
  # How an account is created on the destination:
  #   { kind: passwd-file, path: /etc/dovecot/users, scheme: SHA512-CRYPT }  append to a Dovecot passwd-file
  #     (optional uid, gid, home fields for the new line)
  #   { kind: command, command: [/usr/local/sbin/mkuser] }  run it with the address as last
  #     argument and the password on stdin
  #   { kind: none }  accounts already exist on the destination
  provision: { kind: passwd-file, path: /etc/dovecot/users, scheme: SHA512-CRYPT }
  # A Dovecot master user (auth_master_user_separator) lets AutoPort write to an account
  # without its password. Its password comes from a file (mode 0600) or an environment
  # variable, never from this file.
  # master: { user: admin, passwordFile: /etc/autoport/master.pw }
  # master: { user: admin, passwordEnv: AUTOPORT_MASTER_PASSWORD }

# Addresses AutoPort listens on, "host:port" ([::]:143 for IPv6). Leave a line out to not
# offer that service. imaps, pop3s and submissions (465) need the tls certificate below;
# the plain ports offer STARTTLS when it is set.
listen:
  imap: "0.0.0.0:143"
  imaps: "0.0.0.0:993"
  pop3: "0.0.0.0:110"
  pop3s: "0.0.0.0:995"
  smtp: "0.0.0.0:25"
  submission: "0.0.0.0:587"
  # submissions: "0.0.0.0:465"

# Certificate and key the listeners present: the certificate of the source's public name,
# since clients keep connecting to that name.
tls: { cert: /etc/autoport/cert.pem, key: /etc/autoport/key.pem }

# Mail domains AutoPort accepts mail for on the smtp listener (lower-case). Mail to any
# other domain is relayed only for authenticated users: never an open relay.
domains: [example.org]

# proxy: a first login is checked against the source and the session is spliced to it;
#        the account is copied in the background.
# immediate: the account is copied while the client waits, then the session goes to the
#        destination.
strategy: proxy

# Account records (who logged in, what was copied, encrypted credentials): a JSON file,
# or a PostgreSQL database, e.g. postgresql://autoport@db.example.org:5432/autoport with
# its password in statePasswordFile: /etc/autoport/pg.pass (never in the URL).
state: ${opts.state}
# The state folder (copy ledger, side files); default: the state file's folder, or this
# file's folder when state is a URL.
# stateDir: /var/lib/autoport
# The key that encrypts stored passwords; \`autoport init\` creates it with mode 0600.
# Losing it means captured passwords cannot be used: back it up with the state.
keyFile: ${opts.keyFile}
# Event logs (sessions, relays, transfers); default: the state folder.
# logDir: /var/log/autoport

# connections: parallel IMAP connections per side for one account;
# concurrency: accounts moved at once.
transfer: { connections: 2, concurrency: 2 }

# Gateway policy. plaintextLogin: always | loopback | never (default: loopback when tls is
# set, else always). destinationLogin: user (the captured password) or master
# (destination.master). forwardClient: pass the client's address to each backend (IMAP ID
# x-originating-ip, POP3/SMTP XCLIENT; the server must trust AutoPort's address for it).
gateway: { destinationLogin: user, forwardClient: { source: true, destination: true } }

# Listeners behind a load balancer (HAProxy send-proxy / send-proxy-v2, nginx stream
# proxy_protocol on) that puts the client's address in a PROXY protocol header (v1 or v2).
# A listener named here takes connections only from the trusted addresses and only with
# a header; everything else is closed before a greeting.
# proxyProtocol: { listeners: [imap, submission], trusted: ["10.0.0.0/8", "127.0.0.1"] }

# Client addresses or blocks (as the brakes see them: after the PROXY header) that log in
# for many users, e.g. a webmail host or an office NAT. Their failures do not brake the
# whole address; each account guessed through them is still braked. Re-read on SIGHUP.
# brakes: { trusted: ["192.0.2.10", "10.1.0.0/16", "2001:db8::/48"] }

# SMTP listeners: the largest message accepted (advertised with SIZE, refused above it).
smtp: { maxMessageBytes: 52428800 }

# While \`autoport proxy\` runs, other commands and \`autoport monitor\` reach it through
# the control socket (owner-only; default: autoport.sock in the state folder).
# metrics: Prometheus /metrics and /healthz over HTTP (keep it on loopback; false: off).
control: { metrics: "127.0.0.1:9465" }

# Milliseconds: TCP connect, server greeting, one command's reply, an idle session.
timeouts: { connectMs: 10000, greetingMs: 10000, commandMs: 60000, idleMs: 1800000 }
`;
}
