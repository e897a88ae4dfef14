import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EndpointError,
  hostPort,
  isLoopbackHost,
  parseEndpoint,
} from '../../src/core/config/endpoint.js';

function problemOf(value: string, expect?: Parameters<typeof parseEndpoint>[1]): EndpointError {
  try {
    parseEndpoint(value, expect);
  } catch (err) {
    assert.ok(err instanceof EndpointError, `expected EndpointError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${value} parsed, expected an error`);
}

describe('parseEndpoint', () => {
  it('takes default ports and TLS modes from the scheme', () => {
    const cases: Array<[string, string, number, string, boolean]> = [
      ['imap://mail.example.org', 'imap', 143, 'starttls', false],
      ['imaps://mail.example.org', 'imap', 993, 'implicit', false],
      ['pop3://mail.example.org', 'pop3', 110, 'starttls', false],
      ['pop3s://mail.example.org', 'pop3', 995, 'implicit', false],
      ['smtp://mail.example.org', 'smtp', 25, 'starttls', false],
      ['smtps://mail.example.org', 'smtp', 465, 'implicit', true],
      ['submission://mail.example.org', 'smtp', 587, 'starttls', true],
      ['lmtp://mail.example.org', 'lmtp', 24, 'none', false],
    ];
    for (const [url, protocol, port, tls, submission] of cases) {
      const ep = parseEndpoint(url);
      assert.deepEqual(
        [ep.protocol, ep.port, ep.tls, ep.submission, ep.host, ep.verify, ep.servername],
        [protocol, port, tls, submission, 'mail.example.org', true, 'mail.example.org'],
        url,
      );
      assert.equal(ep.url, url);
    }
  });

  it('reads port, tls, verify and servername', () => {
    const ep = parseEndpoint(
      'imap://10.0.0.5:1143?tls=implicit&verify=false&servername=mail.example.org',
    );
    assert.equal(ep.host, '10.0.0.5');
    assert.equal(ep.port, 1143);
    assert.equal(ep.tls, 'implicit');
    assert.equal(ep.verify, false);
    assert.equal(ep.servername, 'mail.example.org');
  });

  it('lower-cases the host and strips IPv6 brackets', () => {
    assert.equal(parseEndpoint('imaps://Mail.Example.ORG').host, 'mail.example.org');
    const v6 = parseEndpoint('imap://[::1]:10143?tls=none');
    assert.equal(v6.host, '::1');
    assert.equal(hostPort(v6), '[::1]:10143');
    assert.equal(hostPort(parseEndpoint('imap://127.0.0.1:1?tls=none')), '127.0.0.1:1');
  });

  it('allows a trailing slash', () => {
    assert.equal(parseEndpoint('imaps://mail.example.org:993/').port, 993);
  });

  it('says "port out of range" instead of a bare "Invalid URL"', () => {
    const e = problemOf('imap://x:99999');
    assert.match(e.problem, /^port out of range/);
    assert.equal(e.value, 'imap://x:99999');
    assert.match(problemOf('imap://x:0').problem, /port out of range/);
    assert.match(problemOf('imap://x:abc').problem, /port "abc" is not a number/);
  });

  it('rejects unknown schemes, naming the known ones', () => {
    assert.match(problemOf('http://x').problem, /unknown scheme "http"; use one of imap, imaps/);
  });

  it('rejects text that is not a URL', () => {
    assert.match(problemOf('mail.example.org:143').problem, /not a URL; write it like imap:\/\//);
    assert.match(problemOf('').problem, /not a URL/);
  });

  it('checks the protocol expected at that key', () => {
    assert.equal(
      problemOf('pop3://x', ['imap']).problem,
      'must use imap:// or imaps://, not pop3://',
    );
    assert.equal(
      problemOf('imap://x', ['smtp', 'lmtp']).problem,
      'must use smtp://, smtps://, submission:// or lmtp://, not imap://',
    );
    assert.equal(parseEndpoint('lmtp://x', ['smtp', 'lmtp']).protocol, 'lmtp');
  });

  it('never takes credentials in the URL, and masks them in the error', () => {
    const e = problemOf('imap://admin:hunter2@x');
    assert.match(e.problem, /credentials never go in URLs \(use passwordFile\)/);
    assert.equal(e.value, 'imap://***@x');
    assert.doesNotMatch(e.message, /hunter2/);
  });

  it('rejects paths, fragments and unknown parameters', () => {
    assert.match(problemOf('imap://x/INBOX').problem, /has a path "\/INBOX"/);
    assert.match(problemOf('imap://x#a').problem, /has a fragment/);
    assert.match(
      problemOf('imap://x?tsl=none').problem,
      /unknown parameter "tsl"; known: tls, verify/,
    );
  });

  it('validates the values of tls, verify, force-plain and servername', () => {
    assert.match(problemOf('imap://x?tls=ssl').problem, /tls=ssl is not a TLS mode/);
    assert.match(problemOf('imap://x?verify=no').problem, /use verify=true or verify=false/);
    assert.match(problemOf('imap://x?force-plain=yes').problem, /force-plain=yes/);
    assert.match(problemOf('imap://x?servername=').problem, /servername= is empty/);
  });

  it('allows plain text only to loopback (or when forced), except for LMTP', () => {
    assert.equal(parseEndpoint('imap://127.0.0.1:143?tls=none').tls, 'none');
    assert.equal(parseEndpoint('imap://localhost?tls=none').tls, 'none');
    assert.equal(parseEndpoint('imap://[::1]?tls=none').tls, 'none');
    assert.match(problemOf('imap://mail.example.org?tls=none').problem, /sends passwords in clear/);
    assert.equal(parseEndpoint('imap://mail.example.org?tls=none&force-plain=true').tls, 'none');
    assert.equal(parseEndpoint('lmtp://mail.example.org').tls, 'none');
  });
});

describe('isLoopbackHost', () => {
  it('knows the loopback spellings', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackHost(h), true, h);
    }
    for (const h of ['10.0.0.1', 'example.org', '128.0.0.1', '::2', 'localhost.example.org']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });
});
