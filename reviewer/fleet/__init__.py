"""`reviewer fleet`: one release across every Planet 4 site, each change inspected once.

    sites (names, sites.txt, [fleet] sites)                           sites.py
      -> per site, in a bounded pool sharing one rate limit:          gather.py, limiter.py
         newest release waiting on hold-production -> its analysis
         (review.json from its visualtests-compare artifacts, checked
         against the report; else fetched and analysed here) -> the
         approval checks -> a fingerprint of each changed region     fingerprint.py
      -> changes grouped across sites, ranked (pure)                  group.py
      -> fleet.json, fleet.md, fleet.html                             render.py
      -> fleet approve --clean / --accept GROUP: per site, the same
         checks as `reviewer approve`, one audit line each             act.py
"""
