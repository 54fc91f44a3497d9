import { html } from './html.js'
import { layout } from './layout.js'

export interface SignInPage {
  csrf: string
  returnTo: string
  email?: string
  error?: string
}

export const signInPage = (p: SignInPage): string =>
  layout({
    title: 'Sign in',
    csrf: p.csrf,
    body: html`<h1>Sign in</h1>
${p.error ? html`<p class="error" role="alert">${p.error}</p>` : ''}
<form method="post" action="/login">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="return_to" value="${p.returnTo}">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="username" required value="${p.email ?? ''}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <div class="actions"><button type="submit" class="primary">Sign in</button></div>
</form>
<p>New here? <a href="/signup?return_to=${encodeURIComponent(p.returnTo)}">Create an account</a></p>`,
  })

export const signUpPage = (p: SignInPage): string =>
  layout({
    title: 'Create an account',
    csrf: p.csrf,
    body: html`<h1>Create an account</h1>
${p.error ? html`<p class="error" role="alert">${p.error}</p>` : ''}
<form method="post" action="/signup">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="return_to" value="${p.returnTo}">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="username" required value="${p.email ?? ''}">
  <label for="password">Password</label>
  <p class="muted hint" id="password-hint">At least 10 characters.</p>
  <input id="password" name="password" type="password" autocomplete="new-password" required minlength="10" aria-describedby="password-hint">
  <div class="actions"><button type="submit" class="primary">Create account</button></div>
</form>
<p>Have an account? <a href="/login?return_to=${encodeURIComponent(p.returnTo)}">Sign in</a></p>`,
  })
