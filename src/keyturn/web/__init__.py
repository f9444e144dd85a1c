"""What a web backend embedding keyturn shows and answers: views of records, errors as HTTP.

:mod:`.views` turns records into JSON-ready dicts (no secret, digest or code, but the one
answer that hands a secret out); :mod:`.http_errors` maps every keyturn error to a status, a
stable code and a message a person can act on. Both describe; neither decides. The reference
portal (:mod:`keyturn.portal`) is built on them.
"""
