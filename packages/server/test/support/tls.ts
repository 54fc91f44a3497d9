/**
 * Certificates made at test time for loopback TLS servers (https, SMTP with STARTTLS), by Debian's
 * openssl: nothing is checked in, so no key in the repository and nothing that expires between runs.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const openssl = '/usr/bin/openssl'

/** Why a test that needs a certificate is skipped, or undefined when openssl is there. */
export const opensslSkip = (what: string): string | undefined =>
  existsSync(openssl) ? undefined : `${openssl} is not installed (apt-get install openssl; .ci/run does it): no loopback TLS for ${what}`

export interface LoopbackCertificate {
  key: string
  cert: string
  /** The certificate's PEM file: self-signed, so it is also the CA a client trusts to accept it. */
  certPath: string
}

/** A self-signed certificate for 127.0.0.1 (and localhost), written into `dir` as `<name>.key` and `<name>.crt`. */
export function loopbackCertificate(dir: string, name = 'loopback'): LoopbackCertificate {
  const keyPath = join(dir, `${name}.key`)
  const certPath = join(dir, `${name}.crt`)
  execFileSync(
    openssl,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'pipe' },
  )
  return { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8'), certPath }
}
