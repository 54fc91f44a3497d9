import { lookup as dnsLookup } from 'node:dns/promises'
import type { LookupAddress, LookupOptions } from 'node:dns'
import { BlockList, isIP } from 'node:net'

/**
 * Addresses a Data API delivery must not reach unless the deployment allows it: every range of the IANA
 * IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890), multicast, and the deprecated IPv6
 * forms that embed an IPv4 address. Otherwise a partner could point its Data API URL inside the
 * network Fieldgate runs in (cloud metadata, admin ports) and read the answers' statuses on its app page.
 * A few registry entries are globally reachable anycast (AS112, AMT); no receiver lives there either.
 */
export const refusedRanges: ReadonlyArray<readonly [string, number, 'ipv4' | 'ipv6']> = [
  // https://www.iana.org/assignments/iana-ipv4-special-registry
  ['0.0.0.0', 8, 'ipv4'], // "this network", RFC 791
  ['10.0.0.0', 8, 'ipv4'], // private, RFC 1918
  ['100.64.0.0', 10, 'ipv4'], // shared address space (carrier-grade NAT), RFC 6598
  ['127.0.0.0', 8, 'ipv4'], // loopback, RFC 1122
  ['169.254.0.0', 16, 'ipv4'], // link-local (cloud metadata at 169.254.169.254), RFC 3927
  ['172.16.0.0', 12, 'ipv4'], // private, RFC 1918
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments, RFC 6890
  ['192.0.2.0', 24, 'ipv4'], // TEST-NET-1, RFC 5737
  ['192.31.196.0', 24, 'ipv4'], // AS112-v4, RFC 7535
  ['192.52.193.0', 24, 'ipv4'], // AMT, RFC 7450
  ['192.88.99.0', 24, 'ipv4'], // deprecated 6to4 relay anycast, RFC 7526
  ['192.168.0.0', 16, 'ipv4'], // private, RFC 1918
  ['192.175.48.0', 24, 'ipv4'], // direct delegation AS112, RFC 7534
  ['198.18.0.0', 15, 'ipv4'], // benchmarking, RFC 2544
  ['198.51.100.0', 24, 'ipv4'], // TEST-NET-2, RFC 5737
  ['203.0.113.0', 24, 'ipv4'], // TEST-NET-3, RFC 5737
  ['224.0.0.0', 4, 'ipv4'], // multicast, RFC 5771
  ['240.0.0.0', 4, 'ipv4'], // reserved, RFC 1112 (includes 255.255.255.255, limited broadcast, RFC 919)
  // https://www.iana.org/assignments/iana-ipv6-special-registry
  // IPv4-mapped ::ffff:0:0/96 is not listed: BlockList applies the IPv4 rules to its embedded address.
  ['::', 96, 'ipv6'], // unspecified ::/128, loopback ::1/128 and deprecated IPv4-compatible, RFC 4291 §2.5
  ['::ffff:0:0:0', 96, 'ipv6'], // IPv4-translated, RFC 2765
  ['64:ff9b::', 96, 'ipv6'], // NAT64 well-known prefix: reaches any IPv4 address, RFC 6052
  ['64:ff9b:1::', 48, 'ipv6'], // local-use NAT64, RFC 8215
  ['100::', 64, 'ipv6'], // discard-only, RFC 6666
  ['100:0:0:1::', 64, 'ipv6'], // dummy prefix, RFC 9780
  ['2001::', 23, 'ipv6'], // IETF protocol assignments (Teredo, ORCHIDv2, AS112-v6 …), RFC 2928
  ['2001:db8::', 32, 'ipv6'], // documentation, RFC 3849
  ['2002::', 16, 'ipv6'], // 6to4 (deprecated, RFC 7526): relays reach the embedded IPv4 address, private or not
  ['2620:4f:8000::', 48, 'ipv6'], // direct delegation AS112, RFC 7534
  ['3fff::', 20, 'ipv6'], // documentation, RFC 9637
  ['5f00::', 16, 'ipv6'], // SRv6 SIDs, RFC 9602
  ['fc00::', 7, 'ipv6'], // unique-local, RFC 4193
  ['fe80::', 10, 'ipv6'], // link-local, RFC 4291
  ['fec0::', 10, 'ipv6'], // deprecated site-local, RFC 3879
  ['ff00::', 8, 'ipv6'], // multicast, RFC 4291
]

const blocked = new BlockList()
for (const [net, prefix, family] of refusedRanges) blocked.addSubnet(net, prefix, family)

/** True for an address a delivery may not reach; also for anything that is not an IP address. */
export function isRefusedAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 0) return true
  return blocked.check(address, family === 6 ? 'ipv6' : 'ipv4')
}

/** Resolves a host to every address it has (injectable so tests never ask real DNS). */
export type Resolve = (host: string) => Promise<LookupAddress[]>

export const systemResolve: Resolve = (host) => dnsLookup(host, { all: true, verbatim: true })

/** The `lookup` option of node:net, http and https (the type is not exported by @types/node). */
export type ConnectLookup = (
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void

const familyOf = (family: LookupOptions['family']): number => (family === 'IPv4' ? 4 : family === 'IPv6' ? 6 : (family ?? 0))

export class RefusedTargetError extends Error {
  readonly code = 'ERR_FIELDGATE_TARGET_REFUSED'
  /** `address` undefined: the host has no address at all. */
  constructor(host: string, address: string | undefined) {
    super(
      address === undefined
        ? `the Data API URL's host ${host} has no address`
        : `the Data API URL's host ${host} is ${address === host ? '' : `resolved to ${address}, `}a loopback, private or reserved address, which deliveries may not reach`,
    )
  }
}

const hostOf = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '')

/**
 * Refuses a URL whose host is a refused IP literal, and resolves a host name once to refuse it early
 * with a clear error. The connection itself is checked again by `guardedLookup`, since a name may
 * answer differently the next time it is resolved (DNS rebinding).
 */
export async function assertPublicTarget(url: URL, resolve: Resolve = systemResolve): Promise<void> {
  const host = hostOf(url)
  const addresses = isIP(host) ? [host] : (await resolve(host)).map((a) => a.address)
  if (addresses.length === 0) throw new RefusedTargetError(host, undefined)
  const refused = addresses.find(isRefusedAddress)
  if (refused !== undefined) throw new RefusedTargetError(host, refused)
}

/**
 * A connect-time `lookup` for node:net: the socket connects to exactly the addresses checked here, so
 * a host name cannot pass a check with one answer and then connect to another. Any refused answer
 * refuses the host, as an attacker controls which answer the client would try first.
 */
export function guardedLookup(resolve: Resolve = systemResolve): ConnectLookup {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (answers) => {
        const family = familyOf(options.family)
        const wanted = family === 0 ? answers : answers.filter((a) => a.family === family)
        if (wanted.length === 0) return callback(new RefusedTargetError(hostname, undefined), '', 0)
        const refused = wanted.find((a) => isRefusedAddress(a.address))?.address
        if (refused !== undefined) return callback(new RefusedTargetError(hostname, refused), '', 0)
        if (options.all) return callback(null, wanted)
        return callback(null, wanted[0]!.address, wanted[0]!.family)
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    )
  }
}
