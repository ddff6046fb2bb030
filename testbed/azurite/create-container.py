"""Creates a blob container in Azurite with one SharedKey-signed PUT (object_store,
which the shim uses, cannot create containers).

usage: create-container.py <blob-endpoint> <account> <base64-key> <container>
Prints the HTTP status (201 when created).
"""
import base64
import hashlib
import hmac
import sys
import urllib.request
from email.utils import formatdate

endpoint, account, key, container = sys.argv[1:5]
date, version = formatdate(usegmt=True), "2021-08-06"
# VERB, then 12 standard headers (only Content-Type set), then x-ms-* and the resource.
to_sign = ("PUT\n" + "\n" * 4 + "application/octet-stream\n" + "\n" * 6
           + f"x-ms-date:{date}\nx-ms-version:{version}\n"
           + f"/{account}/{account}/{container}\nrestype:container")
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(
    f"{endpoint}/{account}/{container}?restype=container", method="PUT", data=b"",
    headers={"x-ms-date": date, "x-ms-version": version, "Content-Type": "application/octet-stream",
             "Authorization": f"SharedKey {account}:{sig}"})
print(urllib.request.urlopen(req, timeout=10).status)
