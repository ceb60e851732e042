package changelog

// readOp is the argument grammar of every operation, from restore_line and the do_* functions
// of mfsmaster/restore.c. The grammar is 4.59.2's: for each operation that 3.0.117 also has,
// 4.59.2's reader accepts 3.0.117's form too (it keeps the old forms as alternatives: SCSET's
// "W" form, SESADD's and SESCHANGED's mingoal,maxgoal, MOVE without rmode, EMPTYTRASH with
// fewer results), and apart from those the do_* functions of the two versions read the same
// fields. Each function reads from the '(' to the end of the line, result included.
//
// What each version writes (the changelog() calls of mfsmaster/*.c) is a subset of this; the
// comments show the 4.59.2 writer's form where there is one.
// readOp reads the arguments and result of op, from its '(' to the end of the line, into c;
// it returns false for an operation neither version knows. A switch of direct calls, not a
// map of functions, so that the cursor stays on Check's stack.
func readOp(c *cursor, op string) bool {
	switch op {
	case "IDLE": // IDLE(), written every 30 s by an idle 4.x master
		empty(c)
	case "SCECON": // deprecated, 4.x
		empty(c)
	case "SCRAIDON": // deprecated, 4.x
		empty(c)
	case "ACCESS":
		c.nums("4")
	case "ADDATTR":
		opAddattr(c)
	case "AMTIME":
		c.nums("4444")
	case "APPEND":
		opAppend(c)
	case "ACQUIRE":
		c.nums("44")
	case "AQUIRE": // old spelling
		c.nums("44")
	case "RELEASE":
		c.nums("44")
	case "ARCHCHG":
		opArchchg(c)
	case "ATTR":
		opAttr(c)
	case "AUTOARCH":
		opAutoarch(c)
	case "CHUNKADD":
		c.nums("844")
	case "CHUNKDEL":
		c.nums("84")
	case "CHUNKFLAGSCLR":
		c.nums("8")
	case "CREATE":
		opCreate(c)
	case "CSDBOP":
		c.nums("1424")
	case "CSADD": // deprecated
		c.nums("44")
	case "CSDEL": // deprecated
		c.nums("44")
	case "CUSTOMER": // deprecated
		opSession(c)
	case "SESSION": // deprecated
		opSession(c)
	case "EMPTYTRASH":
		opEmptytrash(c)
	case "EMPTYSUSTAINED":
		opEmptysustained(c)
	case "EMPTYRESERVED":
		opEmptysustained(c)
	case "FLOCK":
		opFlock(c)
	case "FREEINODES":
		opFreeinodes(c)
	case "INCVERSION": // deprecated
		c.nums("8")
	case "SETVERSION":
		c.nums("84")
	case "LENGTH":
		opLength(c)
	case "LINK":
		opLink(c)
	case "MOVE":
		opMove(c)
	case "NEXTCHUNKID":
		c.nums("8")
	case "PATADD":
		opPatadd(c)
	case "PATDEL":
		opPatdel(c)
	case "POSIXLOCK":
		opPosixlock(c)
	case "PURGE":
		c.nums("4")
	case "UNDEL":
		c.nums("4")
	case "TRASH_REMOVE":
		c.nums("4")
	case "QUOTA":
		opQuota(c)
	case "RENUMERATEEDGES":
		opRenumedges(c)
	case "REPAIR":
		opRepair(c)
	case "ROLLBACK":
		c.nums("4488")
	case "SCDEL":
		opScdel(c)
	case "SCDUP":
		opScdup(c)
	case "SCREN":
		opScren(c)
	case "SCECVERSION":
		c.nums("1")
	case "SCSET":
		opScset(c)
	case "SESADD":
		opSesadd(c)
	case "SESCHANGED":
		opSeschanged(c)
	case "SESCONNECTED":
		c.nums("4")
	case "SESDEL":
		c.nums("4")
	case "SESDISCONNECTED":
		c.nums("4")
	case "SETACL":
		opSetacl(c)
	case "SETEATTR":
		opSetmode(c)
	case "SETGOAL":
		opSetmode(c)
	case "SETSCLASS":
		opSetsclass(c)
	case "SETTRASHTIME":
		opSetmode(c)
	case "SETFILECHUNK":
		c.nums("448")
	case "SETMETAID":
		c.nums("8")
	case "SETPATH":
		opSetpath(c)
	case "SETXATTR":
		opSetxattr(c)
	case "SNAPSHOT":
		opSnapshot(c)
	case "SYMLINK":
		opSymlink(c)
	case "TRASH_RECOVER":
		opTrashRecover(c)
	case "TRUNC":
		opTrunc(c)
	case "UNLINK":
		opUnlink(c)
	case "UNLOCK":
		c.nums("8")
	case "WRITE":
		opWrite(c)
	default:
		return false
	}
	return true
}

// opNames lists the operations readOp knows, for tests.
var opNames = []string{"IDLE", "SCECON", "SCRAIDON", "ACCESS", "ADDATTR", "AMTIME", "APPEND", "ACQUIRE", "AQUIRE", "RELEASE", "ARCHCHG", "ATTR", "AUTOARCH", "CHUNKADD", "CHUNKDEL", "CHUNKFLAGSCLR", "CREATE", "CSDBOP", "CSADD", "CSDEL", "CUSTOMER", "SESSION", "EMPTYTRASH", "EMPTYSUSTAINED", "EMPTYRESERVED", "FLOCK", "FREEINODES", "INCVERSION", "SETVERSION", "LENGTH", "LINK", "MOVE", "NEXTCHUNKID", "PATADD", "PATDEL", "POSIXLOCK", "PURGE", "UNDEL", "TRASH_REMOVE", "QUOTA", "RENUMERATEEDGES", "REPAIR", "ROLLBACK", "SCDEL", "SCDUP", "SCREN", "SCECVERSION", "SCSET", "SESADD", "SESCHANGED", "SESCONNECTED", "SESDEL", "SESDISCONNECTED", "SETACL", "SETEATTR", "SETGOAL", "SETSCLASS", "SETTRASHTIME", "SETFILECHUNK", "SETMETAID", "SETPATH", "SETXATTR", "SNAPSHOT", "SYMLINK", "TRASH_RECOVER", "TRUNC", "UNLINK", "UNLOCK", "WRITE"}

// num reads one number of the width named by w: '1' u8, '2' u16, '4' u32, '8' u64.
func (c *cursor) width(w byte) {
	switch w {
	case '1':
		c.u8()
	case '2':
		c.u16()
	case '4':
		c.u32()
	default:
		c.u64()
	}
}

// nums reads an argument list of numbers only, with no result: nums("84") is (u64,u32).
func (c *cursor) nums(widths string) {
	c.eat('(')
	for k := 0; k < len(widths); k++ {
		if k > 0 {
			c.eat(',')
		}
		c.width(widths[k])
	}
	c.eat(')')
}

// list reads ",n,n..." numbers of the given widths, each after a comma.
func (c *cursor) list(widths string) {
	for k := 0; k < len(widths); k++ {
		c.eat(',')
		c.width(widths[k])
	}
}

func empty(c *cursor) { c.eat('('); c.eat(')') }

// ADDATTR(inode,flags,blob)
func opAddattr(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("1")
	c.eat(',')
	c.data()
	c.eat(')')
}

// APPEND(inode,inode_src[,slice_from,slice_to])
func opAppend(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	if c.peek() != ')' {
		c.list("44")
	}
	c.eat(')')
}

// ARCHCHG(inode,uid,flags):chgchunks,notchgchunks,nsinodes
func opArchchg(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("41")
	c.eat(')')
	c.eat(':')
	c.u64()
	c.list("84")
}

// ATTR(inode,mode,uid,gid,atime,mtime[,[winattr,]aclmode])
func opAttr(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("44444")
	if c.peek() == ',' {
		c.list("4")
		if c.peek() == ',' {
			c.list("4")
		}
	}
	c.eat(')')
}

// AUTOARCH(inode,archreftime[,intrash]):archchgchunks[,trashchgchunks]; the second result
// comes with, and only with, the third argument.
func opAutoarch(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	format1 := c.peek() == ','
	if format1 {
		c.list("1")
	}
	c.eat(')')
	c.eat(':')
	c.u32()
	if format1 {
		c.list("4")
	}
}

// CREATE(parent,name,type,mode,cumask,uid,gid,rdev):inode; type is a number or, in old
// lines, a letter, and a type of 16 or more has no cumask.
func opCreate(c *cursor) {
	c.eat('(')
	c.u32()
	c.eat(',')
	c.name()
	c.eat(',')
	typ := c.peek()
	if typ >= '0' && typ <= '9' {
		start := c.i
		c.u8()
		typ = 0
		for _, d := range c.b[start:c.i] {
			typ = typ*10 + (d - '0') // at most 255: u8 checked it
		}
	} else if typ == ',' || typ == '(' || typ == ')' || typ == '%' || typ == 0 {
		c.fail("a file type") // a letter in old lines; never a separator or an escape
	} else {
		c.i++
	}
	c.list("2")
	if typ < 16 {
		c.list("2")
	}
	c.list("444")
	c.eat(')')
	c.eat(':')
	c.u32()
}

// SESSION():sessionid, CUSTOMER():sessionid (both deprecated)
func opSession(c *cursor) { c.eat('('); c.eat(')'); c.eat(':'); c.u32() }

// EMPTYTRASH([bid]):freeinodes,sustainedinodes[,[trashflaginodes,]inode_chksum]
// (3.0.117 writes three results, 4.59.2 four; 3.0.117's reader takes at most three).
func opEmptytrash(c *cursor) {
	c.eat('(')
	if c.peek() != ')' {
		c.u32()
	}
	c.eat(')')
	c.eat(':')
	c.u32()
	c.list("4")
	if c.peek() == ',' {
		c.list("4")
		if c.peek() == ',' {
			c.list("4")
		}
	}
}

// EMPTYSUSTAINED([bid]):freeinodes[,inode_chksum]; EMPTYRESERVED is its old name.
func opEmptysustained(c *cursor) {
	c.eat('(')
	if c.peek() != ')' {
		c.u32()
	}
	c.eat(')')
	c.eat(':')
	c.u32()
	if c.peek() == ',' {
		c.list("4")
	}
}

// FLOCK(inode,sessionid,owner,cmd)
func opFlock(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("48")
	c.eat(',')
	c.lockCmd()
	c.eat(')')
}

// FREEINODES([inodereusedelay]):freeinodes[,sustainedinodes][,inode_chksum]
func opFreeinodes(c *cursor) {
	c.eat('(')
	if c.peek() != ')' {
		c.u32()
	}
	c.eat(')')
	c.eat(':')
	c.u32()
	if c.peek() == ',' {
		c.list("4")
	}
	if c.peek() == ',' {
		c.list("4")
	}
}

// LENGTH(inode,length[,canmodmtime])
func opLength(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("8")
	if c.peek() == ',' {
		c.list("1")
	}
	c.eat(')')
}

// LINK(inode_src,parent_dst,name)
func opLink(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	c.eat(',')
	c.name()
	c.eat(')')
}

// MOVE(parent_src,name_src,parent_dst,name_dst[,rmode]):inode; 3.0.117 writes no rmode.
func opMove(c *cursor) {
	c.eat('(')
	c.u32()
	c.eat(',')
	c.name()
	c.list("4")
	c.eat(',')
	c.name() // 4.x: then ',' and the rmode
	if c.peek() == ',' {
		c.list("1")
	}
	c.eat(')')
	c.eat(':')
	c.u32()
}

// PATADD(gname,euid,egid,priority,omask,scid,trashretention,seteattr[,clreattr])
func opPatadd(c *cursor) {
	c.eat('(')
	c.name()
	c.list("4411121")
	if c.peek() == ',' {
		c.list("1")
	}
	c.eat(')')
}

// PATDEL(gname,euid,egid)
func opPatdel(c *cursor) { c.eat('('); c.name(); c.list("44"); c.eat(')') }

// POSIXLOCK(inode,sessionid,owner,cmd,start,end,pid)
func opPosixlock(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("48")
	c.eat(',')
	c.lockCmd()
	c.list("884")
	c.eat(')')
}

// QUOTA(inode,exceeded,flags,stimestamp,sinodes,hinodes,slength,hlength,ssize,hsize,
// srealsize,hrealsize[,graceperiod])
func opQuota(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("44444888888")
	if c.peek() == ',' {
		c.list("4")
	}
	c.eat(')')
}

// RENUMERATEEDGES():nextedgeid
func opRenumedges(c *cursor) { c.eat('('); c.eat(')'); c.eat(':'); c.u64() }

// REPAIR(inode,indx):nversion
func opRepair(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	c.eat(')')
	c.eat(':')
	c.u32()
}

// SCDEL(name):sclassid
func opScdel(c *cursor) { c.eat('('); c.name(); c.eat(')'); c.eat(':'); c.u16() }

// SCDUP(oldname,newname):oldsclassid,newsclassid
func opScdup(c *cursor) {
	c.eat('(')
	c.name()
	c.eat(',')
	c.name()
	c.eat(')')
	c.eat(':')
	c.u16()
	c.list("2")
}

// SCREN(oldname,newname):sclassid
func opScren(c *cursor) {
	c.eat('(')
	c.name()
	c.eat(',')
	c.name()
	c.eat(')')
	c.eat(':')
	c.u16()
}

// SETACL(inode,mode,changectime,acltype,userperm,groupperm,otherperm,mask,namedusers,
// namedgroups,aclblob)
func opSetacl(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("211222222")
	c.eat(',')
	c.data()
	c.eat(')')
}

// SETEATTR, SETGOAL, SETTRASHTIME(inode,uid,value,smode):sinodes,ncinodes,nsinodes
func opSetmode(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("444")
	c.eat(')')
	c.eat(':')
	c.u32()
	c.list("44")
}

// SETSCLASS(inode,uid,src_sclassid,dst_sclassid,smode):sinodes,ncinodes,nsinodes
func opSetsclass(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4444")
	c.eat(')')
	c.eat(':')
	c.u32()
	c.list("44")
}

// SETPATH(inode,path)
func opSetpath(c *cursor) { c.eat('('); c.u32(); c.eat(','); c.data(); c.eat(')') }

// SETXATTR(inode,name,value,mode)
func opSetxattr(c *cursor) {
	c.eat('(')
	c.u32()
	c.eat(',')
	c.name()
	c.eat(',')
	c.data()
	c.list("4")
	c.eat(')')
}

// SNAPSHOT(inode,parent,name,smode,sesflags,uid,[gid,...],umask):inodecheck,removed,same,
// existing,hardlinks,new (the result is optional); older forms: gids count then the gids as
// escaped binary, or one gid and no result.
func opSnapshot(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	c.eat(',')
	c.name()
	c.list("444")
	c.eat(',')
	mode := 2
	if c.peek() != '[' {
		c.u32()
		c.eat(',')
		mode = 0
		for k := c.i; k < len(c.b) && c.b[k] != ')'; k++ {
			if c.b[k] < '0' || c.b[k] > '9' {
				mode = 1
				break
			}
		}
	}
	if mode == 0 {
		c.u32()
		c.eat(')')
		return
	}
	if mode == 2 {
		c.u32Array()
	} else {
		c.data()
	}
	c.list("4")
	c.eat(')')
	if c.peek() == ':' {
		c.eat(':')
		c.u32()
		c.list("44444")
	}
}

// SYMLINK(parent,name,path,uid,gid):inode
func opSymlink(c *cursor) {
	c.eat('(')
	c.u32()
	c.eat(',')
	c.name()
	c.eat(',')
	c.data()
	c.list("44")
	c.eat(')')
	c.eat(':')
	c.u32()
}

// TRASH_RECOVER(inode,parent,path,cumask,uid,gid,copysgid):(created_path)
func opTrashRecover(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	c.eat(',')
	c.data()
	c.list("2441")
	c.eat(')')
	c.eat(':')
	c.eat('(')
	c.data()
	c.eat(')')
}

// TRUNC(inode,indx):chunkid
func opTrunc(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	c.eat(')')
	c.eat(':')
	c.u64()
}

// UNLINK(parent,name):inode
func opUnlink(c *cursor) {
	c.eat('(')
	c.u32()
	c.eat(',')
	c.name()
	c.eat(')')
	c.eat(':')
	c.u32()
}

// WRITE(inode,indx[,opflag][,canmodmtime]):chunkid
func opWrite(c *cursor) {
	c.eat('(')
	c.u32()
	c.list("4")
	if c.peek() == ',' {
		c.list("4")
	}
	if c.peek() == ',' {
		c.list("1")
	}
	c.eat(')')
	c.eat(':')
	c.u64()
}
