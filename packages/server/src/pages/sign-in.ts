import type { App, SignupPolicy } from '@fieldgate/core'
import { appHead } from './app-head.js'
import { field, formError, type FieldError } from './form.js'
import { html, type SafeHtml } from './html.js'
import type { Page } from './layout.js'

export interface SignInPage {
  csrf: string
  returnTo: string
  email?: string
  error?: string
  /** What the previous step did (an address confirmed, a password changed), from a fixed list. */
  notice?: string
  /** The app the person is signing in to reach, when they came from its authorization link. */
  toApp?: ToApp | undefined
  /** Upstream OpenID Connect providers, each a "Continue with <name>" button. */
  upstreams?: readonly { id: string; name: string }[]
  /** false: the upstream buttons only (FIELDGATE_PASSWORD_SIGNIN=off). */
  passwords?: boolean
}

/** The app at the end of a sign-in, and where it will send the person back to. */
export interface ToApp {
  app: App
  redirectUri: string | undefined
}

const continuing = (to: ToApp | undefined, lead: string): SafeHtml | string => (to ? appHead(to.app, { returnTo: to.redirectUri, lead }) : '')

const alert = (error: string | undefined): SafeHtml | string => (error ? html`<p class="error" role="alert">${error}</p>` : '')
const status = (notice: string | undefined): SafeHtml | string => (notice ? html`<p role="status">${notice}</p>` : '')

export const signInPage = (p: SignInPage): Page => ({
  focused: true,
  title: 'Sign in',
  csrf: p.csrf,
  body: html`${continuing(p.toApp, 'Signing in to continue to')}
<h1>Sign in</h1>
${status(p.notice)}
${alert(p.error)}
${upstreamButtons(p)}
${p.passwords === false ? '' : passwordForm(p)}`,
})

/**
 * One POST form per provider, with the CSRF token: starting a sign-in sets a transaction cookie, and
 * a form only this page can send keeps another site from starting one in the person's browser.
 */
const upstreamButtons = (p: SignInPage): SafeHtml | string =>
  p.upstreams?.length
    ? html`${p.upstreams.map(
        (u) => html`<form method="post" action="/login/oidc/start" class="upstream">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="provider" value="${u.id}">
  <input type="hidden" name="return_to" value="${p.returnTo}">
  <div class="actions"><button type="submit" class="primary">Continue with ${u.name}</button></div>
</form>`,
      )}${p.passwords === false ? '' : html`<p class="muted">Or sign in with your email and password:</p>`}`
    : ''

const passwordForm = (p: SignInPage): SafeHtml => html`<form method="post" action="/login">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="return_to" value="${p.returnTo}">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="username" required value="${p.email ?? ''}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <div class="actions"><button type="submit" class="primary">Sign in</button></div>
</form>
<p><a href="/forgot-password">Forgot your password?</a></p>
<p>New here? <a href="/signup?return_to=${encodeURIComponent(p.returnTo)}">Create an account</a></p>`

/** After an upstream sign-in, for a person the provider gives no tenant here. */
export const noTenantPage = (p: { csrf: string; user: { email: string }; provider: string; tenantWord: string; returnTo: string }): Page => ({
  title: `No ${p.tenantWord} here yet`,
  user: p.user,
  csrf: p.csrf,
  body: html`<h1>No ${p.tenantWord} here yet</h1>
<p role="alert">You are signed in as <strong>${p.user.email}</strong>, but ${p.provider} gives your account no ${p.tenantWord} here, so there is nothing to connect an app to yet.</p>
<p>Ask an administrator of your ${p.tenantWord} at ${p.provider} to give you access, then sign in again. Building an app? The <a href="/developer">developer portal</a> needs no ${p.tenantWord}.</p>
<p><a href="${p.returnTo}">Go on anyway</a></p>`,
})

export interface SignUpPage {
  csrf: string
  returnTo: string
  policy: SignupPolicy
  email?: string
  error?: FieldError
  toApp?: ToApp | undefined
}

export const signUpPage = (p: SignUpPage): Page => ({
  focused: true,
  title: 'Create an account',
  csrf: p.csrf,
  body: html`${continuing(p.toApp, 'Creating an account to continue to')}
<h1>Create an account</h1>
${p.policy === 'invite' || p.policy === 'closed' ? closed(p.policy) : signUpForm(p)}
<p>Have an account? <a href="/login?return_to=${encodeURIComponent(p.returnTo)}">Sign in</a></p>`,
})

const closed = (policy: 'invite' | 'closed'): SafeHtml =>
  policy === 'invite'
    ? html`<p>Accounts here are by invitation. Ask the people who run it, or an owner of your organisation's account, to invite you: the invitation comes by email.</p>`
    : html`<p>Sign-up is closed here: the people who run it create accounts.</p>`

const signUpForm = (p: SignUpPage): SafeHtml => html`${formError(p.error)}
<form method="post" action="/signup" novalidate>
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="return_to" value="${p.returnTo}">
  ${field('email', 'Email', p.email, p.error, 'email', undefined, html` autocomplete="username" required`)}
  ${field('password', 'Password', undefined, p.error, 'password', 'At least 10 characters.', html` autocomplete="new-password" required minlength="10"`)}
  <div class="actions"><button type="submit" class="primary">Create account</button></div>
</form>
${p.policy === 'verified' ? html`<p class="muted">We will send a link to your address: follow it to confirm the address before you create apps.</p>` : ''}`

/** After sign-up and "Forgot password": the same page whether or not the address has an account. */
export const checkEmailPage = (p: { csrf: string; returnTo: string; title: string; message: string }): Page => ({
  focused: true,
  title: p.title,
  csrf: p.csrf,
  body: html`<h1>${p.title}</h1>
<p role="status">${p.message}</p>
<p class="muted">Nothing there after a few minutes? Look in the spam folder, and check the address you typed.</p>
<p><a href="/login?return_to=${encodeURIComponent(p.returnTo)}">Sign in</a></p>`,
})

export const forgotPasswordPage = (p: { csrf: string; email?: string; error?: FieldError }): Page => ({
  focused: true,
  title: 'Reset your password',
  csrf: p.csrf,
  body: html`<h1>Reset your password</h1>
<p>Enter the address of your account: we will mail it a link to choose a new password.</p>
${formError(p.error)}
<form method="post" action="/forgot-password" novalidate>
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${field('email', 'Email', p.email, p.error, 'email', undefined, html` autocomplete="username" required`)}
  <div class="actions"><button type="submit" class="primary">Send the link</button></div>
</form>
<p><a href="/login">Back to sign in</a></p>`,
})

export const resetPasswordPage = (p: { csrf: string; token: string; email: string; error?: FieldError }): Page => ({
  focused: true,
  title: 'Choose a new password',
  csrf: p.csrf,
  body: html`<h1>Choose a new password</h1>
<p>For <strong>${p.email}</strong>. Every other session of this account will be signed out.</p>
${formError(p.error)}
<form method="post" action="/reset-password" novalidate>
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="token" value="${p.token}">
  <input type="text" name="username" autocomplete="username" value="${p.email}" hidden>
  ${field('password', 'New password', undefined, p.error, 'password', 'At least 10 characters.', html` autocomplete="new-password" required minlength="10"`)}
  <div class="actions"><button type="submit" class="primary">Set the password</button></div>
</form>`,
})

export const verifyEmailPage = (p: { csrf: string; token: string; email: string }): Page => ({
  focused: true,
  title: 'Confirm your email address',
  csrf: p.csrf,
  body: html`<h1>Confirm your email address</h1>
<p>Confirm that <strong>${p.email}</strong> is your address.</p>
<form method="post" action="/verify-email">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="token" value="${p.token}">
  <div class="actions"><button type="submit" class="primary">Confirm my address</button></div>
</form>`,
})

/** A link that opens nothing: used, expired, or never ours. Where to get a new one. */
export const spentLinkPage = (p: { csrf: string; message: string; again: SafeHtml }): Page => ({
  focused: true,
  title: 'This link does not work',
  csrf: p.csrf,
  body: html`<h1>This link does not work</h1>
<p class="error" role="alert">${p.message}</p>
<p>${p.again}</p>`,
})
