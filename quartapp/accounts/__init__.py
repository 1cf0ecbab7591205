"""Accounts: the user model and its migrations, the MySQL queries, what a valid email and
an acceptable password are, bcrypt hashing, the throttle on password checks, and the
service that signs people up and in and checks their password again."""
