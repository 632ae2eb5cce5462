import jwt, time, uuid
def test_x(client):
    def show(r): print(r.request.method, r.request.url, r.status_code, r.headers.get("content-type"), r.text[:300])
    show(client.post("/api/auth/register", json={"email": "a@example.com", "password": "x"*8}))
    show(client.post("/api/auth/register", json={"email": "b@localhost", "password": "x"*8}))
    show(client.post("/api/auth/register", content=b'{"email": "c@example.com", "password": "\\ud800abcdefgh"}'))
    show(client.post("/api/auth/register", content=b'{"email": "c\\ud800@example.com", "password": "abcdefghi"}'))
    show(client.post("/api/auth/login", content=b'{"email": "a@example.com", "password": "\\ud800abcdefgh"}'))
    show(client.post("/api/auth/login", json={"email": "a@example.com", "password": "a\x00bcdefgh"}))
    show(client.post("/api/auth/login", json={"email": "zz@example.com", "password": "a\x00bcdefgh"}))
    r = client.post("/api/auth/login", json={"email": "a@example.com", "password": "x"*8})
    user = r.json()["user"]["id"]
    h = {"Authorization": "Bearer " + r.json()["access_token"]}
    show(client.get("/api/tasks?offset=100000000000000000000", headers=h))
    show(client.get("/api/tasks?offset=9223372036854775807", headers=h))
    show(client.post("/api/tasks", content=b'{"title": "\\ud800"}', headers=h))
    show(client.post("/api/tasks", content=b'{"title": "ok", "description": "\\udc00"}', headers=h))
    now = int(time.time())
    for claims in [{"sub": user, "iat": now, "exp": 10**20}, {"sub": user, "iat": -10**20, "exp": now + 100},
                   {"sub": user, "iat": now, "exp": now+100, "jti": 5}, {"sub": 5, "iat": now, "exp": now+100},
                   {"sub": user, "iat": now + 3600, "exp": now+7200}, {"sub": user, "iat": "x", "exp": now+100},
                   {"sub": user, "iat": now, "exp": 253402300800}, {"sub": user, "iat": now, "exp": 253402300799}]:
        t = jwt.encode(claims, "s"*40, algorithm="HS256")
        show(client.get("/api/auth/me", headers={"Authorization": "Bearer " + t}))
        show(client.post("/api/auth/logout", headers={"Authorization": "Bearer " + t}))
    import base64, json
    def b64(d): return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    t = b64({"alg":"HS256","typ":"JWT"}) + "." + b64({"sub": user, "iat": now, "exp": now+100}).replace("", "") 
    import hmac, hashlib
    body = b64({"alg":"HS256","typ":"JWT"}) + "." + base64.urlsafe_b64encode(('{"sub":"%s","iat":%d,"exp":Infinity}' % (user, now)).encode()).rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(hmac.new(b"s"*40, body.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    show(client.get("/api/auth/me", headers={"Authorization": "Bearer " + body + "." + sig}))
    show(client.get("/api/auth/me", headers={"Authorization": "Bearer"}))
    show(client.get("/api/auth/me", headers={"Authorization": "Bearer   "}))
    show(client.get("/api/auth/me", headers={"Authorization": ""}))
    show(client.get("/api/auth/me", headers={"Authorization": "Bearer a b"}))
    show(client.get("/api/auth/me", headers={"Authorization": "bearer " + h["Authorization"][7:]}))
    show(client.put("/api/tasks/" + str(uuid.uuid4()), headers=h))
    show(client.put("/api/tasks/" + str(uuid.uuid4()), headers=h, json={}))
    show(client.put("/api/tasks/" + str(uuid.uuid4()), headers=h, json={"title": None}))
    show(client.get("/api/tasks?limit=1.5", headers=h))
    show(client.get("/api/tasks?limit=", headers=h))
    show(client.get("/api/tasks?completed=", headers=h))
