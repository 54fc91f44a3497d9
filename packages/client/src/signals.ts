/**
 * AbortSignal plumbing written out by hand rather than with AbortSignal.any/timeout, so it behaves the
 * same on every runtime with fetch, and so a timeout can be told apart from the caller's own abort.
 */
import { FieldgateError } from './errors.js'

export const abortedError = (signal: AbortSignal): FieldgateError => new FieldgateError('aborted', 'the call was aborted by its AbortSignal', { cause: signal.reason })

export interface Deadline {
  /** Aborts when the caller's signal does or when the time is up. */
  readonly signal: AbortSignal
  /** True when it was the time limit, not the caller, that aborted. */
  timedOut(): boolean
  /** Clears the timer and the listener; call in `finally`. */
  done(): void
}

/** A signal that follows `parent` and also aborts after `ms`. */
export function deadline(parent: AbortSignal | undefined, ms: number): Deadline {
  const controller = new AbortController()
  let fired = false
  const timer = setTimeout(() => {
    fired = true
    controller.abort(new FieldgateError('timeout', `no answer within ${ms} ms`))
  }, ms)
  const follow = () => controller.abort(parent?.reason)
  if (parent?.aborted) follow()
  else parent?.addEventListener('abort', follow, { once: true })
  return {
    signal: controller.signal,
    timedOut: () => fired && !parent?.aborted,
    done: () => {
      clearTimeout(timer)
      parent?.removeEventListener('abort', follow)
    },
  }
}

/** Waits `ms`, or rejects with `aborted` as soon as the signal aborts (a backoff must not outlive its caller). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal))
    const onAbort = () => {
      clearTimeout(timer)
      reject(abortedError(signal!))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Waits for a promise others share (a token request in flight) but lets this caller leave when its own
 * signal aborts, without cancelling the shared work for everybody else.
 */
export function untilAborted<T>(shared: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return shared
  if (signal.aborted) return Promise.reject(abortedError(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    shared.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}
