// The Storage interface lives in storage/, one file per aggregate; this path stays for its importers.
export * from './storage/index.js'
