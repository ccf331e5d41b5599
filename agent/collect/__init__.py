"""Collection: the one driver module, SQL per server version, the collectors and pgbouncer's console.

Everything here talks to a server; nothing here judges what it reads.
"""
