#!/usr/bin/env python3
"""Module cycles in src/: which modules refer to each other (`crate::` and `super::` paths
outside comments and unit tests), collapsed to a depth (1: top-level modules, 2: their
children, ...), and every strongly connected group printed with its edges. Not run by
.ci/run (it needs python3, which CI does not install); none remained at any depth after
issue 14.

    python3 .ci/module-cycles.py 2
"""
import os,re,sys
root='src'
def modname(path):
    rel=os.path.relpath(path,root)[:-3]
    parts=rel.split('/')
    if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
    return '::'.join(parts)

def strip_test_modules(src):
    """Removes every `#[cfg(test)] mod NAME { ... }` block (braces matched)."""
    out=[]; i=0
    pattern=re.compile(r'#\[cfg\(test\)\]\s*mod\s+\w+\s*\{')
    while True:
        m=pattern.search(src,i)
        if not m:
            out.append(src[i:]); break
        out.append(src[i:m.start()])
        depth=1; j=m.end()
        while j<len(src) and depth:
            if src[j]=='{': depth+=1
            elif src[j]=='}': depth-=1
            j+=1
        i=j
    return ''.join(out)
mods={}
for d,_,fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p=os.path.join(d,f); m=modname(p)
            src=open(p).read()
            # strip tests
            src=strip_test_modules(src)
            src='\n'.join(l for l in src.split('\n') if not l.strip().startswith('//'))
            mods[m]=src
names=set(mods)
def resolve(m, ref):
    # longest module prefix
    parts=ref.split('::')
    for i in range(len(parts),0,-1):
        cand='::'.join(parts[:i])
        if cand in names: return cand
    return None
edges={m:set() for m in mods}
level=int(sys.argv[1]) if len(sys.argv)>1 else 1
def cut(m): return '::'.join(m.split('::')[:level]) if m else m
for m,src in mods.items():
    for ref in re.findall(r'crate::([a-z_][a-z_0-9:]*)',src):
        t=resolve(m,ref.rstrip(':'))
        if t: edges[m].add(t)
    for ref in re.findall(r'super::([a-z_][a-z_0-9:]*)',src):
        parent='::'.join(m.split('::')[:-1]) if not open(os.path.join(root,*m.split('::'))+'/mod.rs' if os.path.exists(os.path.join(root,*m.split('::'))+'/mod.rs') else '/dev/null').read() else m
        par='::'.join(m.split('::')[:-1]) if not os.path.exists(os.path.join(root,*m.split('::'))+'/mod.rs') else '::'.join(m.split('::')[:-1])
        base=par
        t=resolve(m,(base+'::'+ref.rstrip(':')) if base else ref.rstrip(':'))
        if t: edges[m].add(t)
# collapse to level
g={}
for m,ts in edges.items():
    a=cut(m)
    for t in ts:
        b=cut(t)
        if a!=b and not (b.startswith(a+'::') or a.startswith(b+'::')):
            g.setdefault(a,set()).add(b)
# find 2-cycles and longer via tarjan
index={};low={};st=[];on=set();res=[];i=[0]
sys.setrecursionlimit(10000)
def sc(v):
    index[v]=low[v]=i[0];i[0]+=1;st.append(v);on.add(v)
    for w in g.get(v,()):
        if w not in index: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],index[w])
    if low[v]==index[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(sorted(comp))
for v in list(g):
    if v not in index: sc(v)
for c in res:
    print("cycle:", ", ".join(c))
    for a in c:
        for b in sorted(g.get(a,())):
            if b in c: print(f"   {a} -> {b}")
if not res: print("no cycles at level",level)
