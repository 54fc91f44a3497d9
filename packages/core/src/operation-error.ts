/**
 * Why an operation (operations/) refused: a stable code for the edge to map (404, 409, 400,
 * 403 over HTTP; a page, a JSON error, a CLI message) and a message meant for a person. Code, never text,
 * decides what happens next, as jose's error codes do.
 */
export type OperationErrorCode = 'not_found' | 'conflict' | 'invalid' | 'forbidden'

/** Names of the app fields a message can point at, as forms and the admin API spell them. */
export type AppField =
  | 'name'
  | 'description'
  | 'scopes'
  | 'token_ttl'
  | 'install_url'
  | 'redirect_uris'
  | 'contact_email'
  | 'data_api_url'
  | 'listed'
  | 'logo_url'
  | 'short_description'
  | 'categories'
  | 'publisher'
  | 'support_url'
  | 'privacy_policy_url'
  | 'refresh_tokens'
  | 'access_token_format'
  | 'reason'
  | 'email'
  | 'password'
  | 'role'

export class OperationError extends Error {
  constructor(
    readonly code: OperationErrorCode,
    message: string,
    /** The input field the message is about (the portal shows it beside that field), when it is about one. */
    readonly field?: AppField,
  ) {
    super(message)
    this.name = 'OperationError'
  }
}

/** The HTTP status each code maps to, for every edge that speaks HTTP. */
export const operationStatus: Readonly<Record<OperationErrorCode, number>> = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409 }

/** The input is wrong; `field` names the form or API field when it is about one. */
export const invalid = (message: string, field?: AppField): OperationError => new OperationError('invalid', message, field)
/** What the operation is about does not exist, or the actor may not know it exists. */
export const notFound = (message: string): OperationError => new OperationError('not_found', message)
/** The request is valid but clashes with the store's state (a duplicate, a concurrent change). */
export const conflict = (message: string): OperationError => new OperationError('conflict', message)
/** The actor is known and may not do this. */
export const forbidden = (message: string): OperationError => new OperationError('forbidden', message)
