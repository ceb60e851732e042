package changelog

// The operations whose form changed between MooseFS 3.0.117 and 4.59.2, read as 4.59.2's
// restore.c reads them (it still takes the 3.0.117 forms).

// maxLabels is MAXLABELSCNT: an SCSET with more labels per mode is refused by
// sclass_mr_set_entry's caller (MFS_ERROR_EINVAL), so the fold would stop.
const maxLabels = 9

// SCSET in three forms:
//
//	3.0.117:  SCSET(name,new,Wn,Kn,An,mode,delay,adminonly,masks...|-):sclassid
//	4.0-4.56: SCSET(name,new,C(n:mask[:mode]),K(...),A(n:mask:ec[:mode]),T(...),mode,
//	          delay|(archmode:delay[:minsize]),mintrash,adminonly,exprs...|-):sclassid
//	4.57+:    SCSET(name,new,1,desc,priority,exportgroup,C(...),... as 4.0):sclassid
//
// where 3.0.117 has 4 label masks (MASKORGROUP) per label and 4.x one hex label expression
// per label.
func opScset(c *cursor) {
	c.eat('(')
	c.name()
	c.eat(',')
	c.u8()
	c.eat(',')
	var labels uint64
	switch c.peek() {
	case 'W':
		for _, m := range []byte{'W', 'K', 'A'} {
			if m != 'W' {
				c.eat(',')
			}
			c.eat(m)
			n := c.labelCount()
			labels += n
		}
		c.list("121")
		if labels == 0 {
			c.eat(',')
			c.eat('-')
			break
		}
		for k := uint64(0); k < labels*4; k++ {
			c.list("4")
		}
	case 'C', '1':
		if c.peek() == '1' {
			c.eat('1')
			c.eat(',')
			c.name()
			c.list("41")
			c.eat(',')
		}
		for k, m := range []byte{'C', 'K', 'A', 'T'} {
			if k > 0 {
				c.eat(',')
			}
			c.eat(m)
			c.eat('(')
			labels += c.labelCount()
			c.eat(':')
			c.u32()
			if m == 'A' || m == 'T' {
				c.eat(':')
				c.u8()
			}
			if c.peek() == ':' {
				c.eat(':')
				c.u8()
			}
			c.eat(')')
		}
		c.list("1")
		c.eat(',')
		if c.peek() == '(' {
			c.eat('(')
			c.u8()
			c.eat(':')
			c.u16()
			if c.peek() == ':' {
				c.eat(':')
				c.u64()
			}
			c.eat(')')
		} else {
			c.u16()
		}
		c.list("21")
		if labels == 0 {
			c.eat(',')
			c.eat('-')
			break
		}
		for k := uint64(0); k < labels; k++ {
			c.eat(',')
			start := c.i
			c.hexBytes()
			if c.i-start > 2*sclassExprMax {
				c.i = start
				c.fail("a label expression")
				c.why = "label expression longer than 128 bytes"
			}
		}
	default:
		c.fail("'W', 'C' or '1' (a storage class format)")
	}
	c.eat(')')
	c.eat(':')
	c.u16()
}

// sclassExprMax is SCLASS_EXPR_MAX_SIZE, the bytes of one 4.x label expression.
const sclassExprMax = 128

// labelCount reads the number of labels of one storage mode.
func (c *cursor) labelCount() uint64 {
	start := c.i
	n := c.num(1<<8-1, "a number 0-255")
	if n > maxLabels {
		c.i = start
		c.fail("a label count")
		c.why = "more than 9 labels"
	}
	return n
}

// SESADD([#exportscsum,]rootinode,sesflags,[0umask,]rootuid,rootgid,mapalluid,mapallgid,
// mingoal,maxgoal|0xsclassgroups,mintrash,maxtrash,[0xdisables,]peerip,info):sessionid;
// 3.0.117 writes mingoal,maxgoal and 4.59.2 0xsclassgroups (a 3.0.117 mfsmaster cannot
// read that).
func opSesadd(c *cursor) {
	c.eat('(')
	c.session()
	c.eat(')')
	c.eat(':')
	c.u32()
}

// SESCHANGED(sessionid, then SESADD's arguments), without a result.
func opSeschanged(c *cursor) {
	c.eat('(')
	c.u32()
	c.eat(',')
	c.session()
	c.eat(')')
}

// session reads the session arguments shared by SESADD and SESCHANGED (do_sesadd).
func (c *cursor) session() {
	if c.peek() == '#' {
		c.eat('#')
		c.u64()
		c.eat(',')
	}
	c.u32()
	c.list("4")
	c.eat(',')
	if c.peek() == '0' {
		for k := 1; k <= 3; k++ {
			if d := c.peekAt(k); d < '0' || d > '7' {
				c.i += k
				c.fail("an octal digit of the session umask")
				return
			}
		}
		c.i += 4
		c.eat(',')
	}
	c.u32()
	c.list("444")
	c.eat(',')
	if c.peek() == '0' && c.peekAt(1) == 'x' {
		c.i += 2
		c.x32(0xFFFF)
	} else {
		c.u32()
		c.list("4")
	}
	c.list("44")
	c.eat(',')
	if c.peek() == '0' && c.peekAt(1) == 'x' {
		c.i += 2
		c.x32(0xFFFFFFFF)
		c.eat(',')
	}
	c.u32()
	c.eat(',')
	c.data()
}
