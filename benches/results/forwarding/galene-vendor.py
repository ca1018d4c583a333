"""How Galène's modules were vendored for the build measured here (a record, not a tool).

Galène HEAD needs Go >= 1.24 and its modules; the development machine had no module proxy, but
had bare git mirrors of GitHub repositories under /work/.mirror/OWNER+NAME/repo. This extracts
each module of Galène's go.mod at its version from its mirror into src/vendor/ and writes
vendor/modules.txt, after which `CGO_ENABLED=0 go build -mod=vendor -ldflags='-s -w'` builds it.
Two versions were missing from the mirrors and the nearest later commit is used (see below).
With a module proxy, none of this is needed: `go build` fetches the same versions itself.
"""
import re, subprocess, os, sys
src='src'
gomod=open(f'{src}/go.mod').read()
reqs=re.findall(r'^\s+(\S+)\s+(v\S+)(?:\s*//\s*indirect)?\s*$', gomod, re.M)
repo_of={
 'github.com/at-wat/ebml-go':'at-wat+ebml-go','github.com/golang-jwt/jwt/v5':'golang-jwt+jwt',
 'github.com/gorilla/websocket':'gorilla+websocket','github.com/jech/cert':'jech+cert',
 'github.com/jech/samplebuilder':'jech+samplebuilder','golang.org/x/crypto':'golang+crypto',
 'golang.org/x/sys':'golang+sys','golang.org/x/term':'golang+term','golang.org/x/net':'golang+net',
 'golang.org/x/time':'golang+time','github.com/google/uuid':'google+uuid','github.com/wlynxg/anet':'wlynxg+anet',
}
out=[]
for mod,ver in reqs:
    if mod.startswith('github.com/pion/'):
        name=mod.split('/')[2]; repo='pion+'+name
    else:
        repo=repo_of[mod]
    m=re.match(r'v0\.0\.0-\d+-([0-9a-f]{12})$', ver)
    ref = m.group(1) if m else ver
    ref = {'github.com/pion/rtcp':'HEAD','golang.org/x/time':'HEAD'}.get(mod, ref)
    mirror=f'/work/.mirror/{repo}/repo'
    dest=f'{src}/vendor/{mod}'
    os.makedirs(dest, exist_ok=True)
    p1=subprocess.run(['git','-C',mirror,'archive',ref]+(['--',':(exclude)mobile'] if 'anet' in mod else []), stdout=subprocess.PIPE)
    if p1.returncode: print('FAIL', mod, ver, file=sys.stderr); continue
    subprocess.run(['tar','-x','-C',dest], input=p1.stdout, check=True)
    mgo=open(f'{dest}/go.mod').read()
    modline=re.search(r'^module\s+(\S+)', mgo, re.M).group(1)
    if modline!=mod: print('MODULE MISMATCH', mod, modline, file=sys.stderr)
    gov=re.search(r'^go\s+(\S+)', mgo, re.M)
    pkgs=[]
    for root,dirs,files in os.walk(dest):
        dirs[:]=[d for d in dirs if d not in ('testdata',) and not d.startswith(('.','_'))]
        # skip nested modules
        if root!=dest and os.path.exists(os.path.join(root,'go.mod')):
            dirs[:]=[]; continue
        if any(f.endswith('.go') and not f.endswith('_test.go') for f in files):
            rel=os.path.relpath(root,dest)
            pkgs.append(mod if rel=='.' else mod+'/'+rel)
    explicit='## explicit' + (f'; go {gov.group(1)}' if gov else '')
    out.append(f'# {mod} {ver}\n{explicit}\n' + ''.join(p+'\n' for p in sorted(pkgs)))
open(f'{src}/vendor/modules.txt','w').write(''.join(out))
print(len(reqs),'modules')
