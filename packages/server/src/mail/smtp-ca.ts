import { X509Certificate } from 'node:crypto'
import { ConfigError, readSettingFile, type Config } from '@fieldgate/core'

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/**
 * The CA certificates FIELDGATE_SMTP_CA_FILE names (relative to the data dir), read and checked once at
 * start: a file that is missing or holds no certificate stops the server there, rather than failing every
 * message later in a log line. Undefined when it is unset (Node's own CAs only).
 */
export function loadSmtpCa(config: Pick<Config, 'smtpCaFile' | 'dataDir'>): string[] | undefined {
  if (config.smtpCaFile === undefined) return undefined
  const { path, text } = readSettingFile('FIELDGATE_SMTP_CA_FILE', config.smtpCaFile, config.dataDir)
  const certificates = text.match(pemCertificate) ?? []
  if (certificates.length === 0) throw new ConfigError(`FIELDGATE_SMTP_CA_FILE ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
  for (const [i, pem] of certificates.entries()) checkCertificate(pem, `FIELDGATE_SMTP_CA_FILE ${path} certificate ${i + 1}`)
  return certificates
}

/** A block that only looks like a certificate is refused here, not at the first TLS handshake. */
function checkCertificate(pem: string, where: string): void {
  try {
    new X509Certificate(pem)
  } catch (err) {
    throw new ConfigError(`${where} cannot be read: ${err instanceof Error ? err.message : String(err)}`)
  }
}
