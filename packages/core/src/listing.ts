import type { App, AppCategory } from './model.js'

/*
 * How the marketplace presents an app: its listing (logo, one line, categories, publisher, links),
 * and the search a farm runs over the listed apps. The fields are validated in operations/apps.ts.
 */

/** A short description fits one line of a card. */
export const shortDescriptionMax = 140
/** Categories help a farm filter; an app in every category would defeat it. */
export const maxCategories = 3

/** Who customers see as the app's maker: the publisher the partner named, else its contact address. */
export const publisherOf = (app: Pick<App, 'publisher' | 'contactEmail'>): string => app.publisher ?? app.contactEmail ?? 'Unnamed publisher'

/** Up to two letters for a logo-less app's badge: the first letters of its first two words. */
export function initials(name: string): string {
  const letters = name
    .split(/\s+/)
    .map((word) => [...word].find((c) => /\p{L}|\p{N}/u.test(c)) ?? '')
    .filter(Boolean)
  return letters.slice(0, 2).join('').toUpperCase() || '?'
}

export interface ListingSearch {
  /** Matches the name, short description or publisher, case-insensitively. */
  query?: string
  category?: AppCategory
  offset?: number
  limit?: number
}

/** A page of listed apps that match, newest first (what a farm has not seen yet); `more` when another page follows. */
export function searchListings(apps: readonly App[], search: ListingSearch): { apps: App[]; total: number; more: boolean } {
  const q = search.query?.trim().toLowerCase() ?? ''
  const matches = apps
    .filter((a) => !search.category || a.categories.includes(search.category))
    .filter((a) => !q || [a.name, a.shortDescription, publisherOf(a)].some((text) => text.toLowerCase().includes(q)))
    .sort((a, b) => b.createdAt - a.createdAt || a.clientId.localeCompare(b.clientId))
  const offset = Math.max(search.offset ?? 0, 0)
  const limit = Math.min(Math.max(search.limit ?? 20, 1), 100)
  return { apps: matches.slice(offset, offset + limit), total: matches.length, more: offset + limit < matches.length }
}
