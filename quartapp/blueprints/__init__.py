"""One blueprint per area: sign-up, sign-in and sign-out (auth), the signed-in page and
its countdown (home), your sessions and your account (account), and health checks."""
